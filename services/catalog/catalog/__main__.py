"""``python -m catalog`` serves the API; ``python -m catalog migrate`` applies the migrations."""

from __future__ import annotations

import sys

from catalog.bootstrap import MIGRATIONS_DIR, build_app
from catalog.settings import CatalogSettings
from flashline_service.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], settings=CatalogSettings, build_app=build_app, migrations_dir=MIGRATIONS_DIR))
