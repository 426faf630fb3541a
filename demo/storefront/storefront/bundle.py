"""Build the front-end bundle (esbuild through ``node build.mjs``) when it is missing or stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from storefront.settings import ROOT_DIR

SOURCES = ROOT_DIR / "web"
BUILD_SCRIPT = ROOT_DIR / "build.mjs"
STAMP = ".build-stamp"


class BundleError(RuntimeError):
    """The bundle is missing and cannot be built here."""


def _newest_source() -> float:
    files = [p for p in SOURCES.rglob("*") if p.is_file()] + [BUILD_SCRIPT]
    return max(p.stat().st_mtime for p in files)


def is_stale(dist: Path) -> bool:
    stamp = dist / STAMP
    if not stamp.exists() or not (dist / "index.html").exists():
        return True
    return _newest_source() > stamp.stat().st_mtime


def ensure_bundle(dist: Path) -> bool:
    """Build into ``dist`` if needed; True when a build ran. Raises BundleError when impossible."""
    if not SOURCES.is_dir():  # an installed copy without sources: serve what is there
        if not (dist / "index.html").exists():
            raise BundleError(f"no bundle in {dist} and no sources to build it from")
        return False
    if not is_stale(dist):
        return False
    node = shutil.which("node")
    if node is None:
        raise BundleError("the storefront bundle is missing or stale and `node` is not installed (Node 20+)")
    command = [node, str(BUILD_SCRIPT), "--outdir", str(dist)]
    result = subprocess.run(command, cwd=ROOT_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise BundleError(f"building the storefront bundle failed:\n{result.stdout}{result.stderr}")
    return True
