"""``python -m cart`` serves the API; ``python -m cart migrate`` applies the migrations."""

from __future__ import annotations

import sys

from cart.bootstrap import MIGRATIONS_DIR, build_app
from cart.settings import CartSettings
from flashline_service.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], settings=CartSettings, build_app=build_app, migrations_dir=MIGRATIONS_DIR))
