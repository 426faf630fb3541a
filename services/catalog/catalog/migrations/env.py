"""Alembic environment of the catalog database (run by ``python -m catalog migrate``)."""

from catalog.adapters.tables import metadata
from flashline_service.alembic_env import run_migrations

run_migrations(metadata)
