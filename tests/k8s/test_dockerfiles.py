"""services/*/Dockerfile: pinned multi-stage builds of the right module, non-root, matching the manifests.

No Docker engine runs in CI, so these read the Dockerfiles (and run their constraints filter);
an image build is `docker build -f services/<svc>/Dockerfile .` from the repository root.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = {  # service folder -> (python module, HTTP port)
    "catalog": ("catalog", 8001),
    "orders": ("orders", 8002),
    "cart": ("cart", 8003),
    "push-gateway": ("push_gateway", 8000),
}
RUNTIME_UID = 10001  # also runAsUser in deploy/k8s


def dockerfile(service: str) -> str:
    return (REPO_ROOT / "services" / service / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def installed_paths(text: str) -> list[str]:
    """The local folders the build stage pip-installs."""
    runs = [args for word, args in instructions(text) if word == "RUN" and "pip install" in args]
    assert len(runs) == 1, "want exactly one pip install"
    return [p.strip('"').split("[")[0] for p in re.findall(r"\"?\./[\w./-]+(?:\[[\w,]+\])?\"?", runs[0])]


@pytest.mark.parametrize("service", sorted(IMAGES))
def test_multi_stage_pinned_non_root(service):
    text = dockerfile(service)
    steps = instructions(text)
    base = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in steps if w == "ARG")))["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    froms = [a for w, a in steps if w == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    runtime = steps[[i for i, (w, _) in enumerate(steps) if w == "FROM"][1] :]
    assert ("COPY", "--from=build /install /usr/local") in runtime
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] == str(RUNTIME_UID), "the runtime user must be numeric 10001"
    assert not any(w == "RUN" and "pip" in a for w, a in runtime), "nothing is installed in the runtime stage"


@pytest.mark.parametrize("service", sorted(IMAGES))
def test_entrypoint_and_port(service):
    module, port = IMAGES[service]
    steps = instructions(dockerfile(service))
    entrypoints = [a for w, a in steps if w == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["python", "-m", module]]
    assert ("EXPOSE", str(port)) in steps


@pytest.mark.parametrize("service", sorted(IMAGES))
def test_installs_the_libs_and_the_service_with_the_lock(service):
    text = dockerfile(service)
    paths = installed_paths(text)
    assert paths[-1] == f"./services/{service}", "the service itself is installed last"
    for lib in ("contracts", "auth", "service-kit"):
        assert f"./libs/{lib}" in paths
    copied = {a.split()[0].rstrip("/") for w, a in instructions(text) if w == "COPY" and not a.startswith("--")}
    for path in paths:
        assert path[2:] in copied, f"{path} is installed but not copied into the build stage"
        if path.startswith("./libs/"):
            assert (REPO_ROOT / path / "pyproject.toml").exists(), f"{path} is not a package"
    assert "requirements.lock" in copied
    assert re.search(r"pip install .*-c constraints\.txt", " ".join(a for _, a in instructions(text)))


@pytest.mark.parametrize("service", sorted(IMAGES))
def test_the_service_package_exists(service):
    """Skipped until the service's own package lands (other teams write it)."""
    module, _ = IMAGES[service]
    root = REPO_ROOT / "services" / service
    if not (root / "pyproject.toml").exists():
        pytest.skip(f"services/{service} has no pyproject.toml yet")
    assert (root / module).is_dir(), f"services/{service}/{module} is missing (ENTRYPOINT python -m {module})"


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_constraints_filter_keeps_third_party_pins_only(tmp_path):
    """The lock may name the local packages (editable, path, file URL): pip refuses those as constraints."""
    text = dockerfile("catalog")
    command = next(a for w, a in instructions(text) if w == "RUN" and "grep" in a)
    pattern = re.search(r"grep -vE '([^']+)'", command).group(1)
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# comment\nfastapi==0.115.0\n-e ./libs/contracts\n--editable libs/auth\n./libs/messaging\n"
        "flashline-service @ file:///src/libs/service-kit\nasyncpg==0.29.0\n"
    )
    result = subprocess.run(["grep", "-vE", pattern, str(lock)], capture_output=True, text=True, check=False)
    assert result.stdout.split("\n") == ["# comment", "fastapi==0.115.0", "asyncpg==0.29.0", ""]


def test_dockerignore_sends_only_what_the_images_install():
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: start by ignoring everything"
    assert {"!libs/", "!services/", "!requirements.lock"} <= set(lines)
    for private in ("**/.dev", "**/.venv", "**/node_modules", "**/*.pem", "**/__pycache__"):
        assert private in lines
    assert (REPO_ROOT / "requirements.lock").exists()


def needs_wheel_builder() -> None:
    """Skip unless setuptools can build wheels without the network (>= 70.1, or the wheel package)."""
    setuptools = pytest.importorskip("setuptools")
    version = tuple(int(x) for x in re.findall(r"\d+", setuptools.__version__)[:2])
    if version < (70, 1):
        pytest.importorskip("wheel", reason="setuptools < 70.1 needs the wheel package to build wheels")


def files_missing_from_wheel(service_root: Path, module: str, subdir: str, workdir: Path) -> set[str]:
    """Python files under ``<module>/<subdir>`` of the source tree that the service's wheel would not ship."""
    src = workdir / "src"
    shutil.copytree(service_root, src, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(workdir), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(next(workdir.glob("*.whl"))) as wheel:
        shipped = set(wheel.namelist())
    tree = src / module / subdir
    wanted = {
        f"{module}/{subdir}/{path.relative_to(tree).as_posix()}"
        for path in tree.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    return wanted - shipped


@pytest.mark.parametrize("service", ["catalog", "orders", "cart"])
def test_the_image_carries_the_migrations(service, tmp_path):
    """The image pip-installs the service (not editable): its Alembic env.py and versions/*.py must be
    in the wheel (versions/ has no __init__.py), or the migration Job finds nothing to apply."""
    module, _ = IMAGES[service]
    root = REPO_ROOT / "services" / service
    if not (root / "pyproject.toml").exists() or not (root / module / "migrations").is_dir():
        pytest.skip(f"services/{service} has no migrations package yet")
    needs_wheel_builder()
    assert files_missing_from_wheel(root, module, "migrations", tmp_path) == set()


def test_wheel_check_notices_missing_files(tmp_path):
    """files_missing_from_wheel on a package whose data directory is not packaged."""
    root = tmp_path / "svc"
    (root / "demo" / "migrations" / "versions").mkdir(parents=True)
    (root / "demo" / "__init__.py").write_text("")
    (root / "demo" / "migrations" / "__init__.py").write_text("")
    (root / "demo" / "migrations" / "versions" / "0001_initial.py").write_text("")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1"\n[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n'
        '[tool.setuptools.packages.find]\ninclude = ["demo*"]\nnamespaces = false\n'
    )
    needs_wheel_builder()
    work = tmp_path / "work"
    work.mkdir()
    assert files_missing_from_wheel(root, "demo", "migrations", work) == {"demo/migrations/versions/0001_initial.py"}
