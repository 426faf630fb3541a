"""``python -m orders`` serves the API; ``python -m orders migrate`` applies the migrations."""

from __future__ import annotations

import sys

from flashline_service.cli import run
from orders.bootstrap import MIGRATIONS_DIR, build_app
from orders.settings import OrdersSettings

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], settings=OrdersSettings, build_app=build_app, migrations_dir=MIGRATIONS_DIR))
