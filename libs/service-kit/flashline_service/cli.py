"""Every service's command line: ``python -m <service>`` serves, ``... migrate`` migrates."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from flashline_service.migrations import upgrade
from flashline_service.serve import serve
from flashline_service.settings import ServiceSettings


def run(
    argv: list[str],
    *,
    settings: Callable[[], ServiceSettings],
    build_app: Callable[..., FastAPI],
    migrations_dir: Path,
) -> int:
    built = settings()
    if argv == ["migrate"]:
        upgrade(migrations_dir, built.database_url)
        return 0
    if argv:
        print(f"usage: python -m {built.service_name} [migrate]", file=sys.stderr)
        return 2
    serve(build_app(built), built)
    return 0
