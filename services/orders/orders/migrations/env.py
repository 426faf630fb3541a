"""Alembic environment of the orders database (run by ``python -m orders migrate``)."""

from flashline_service.alembic_env import run_migrations
from orders.adapters.tables import metadata

run_migrations(metadata)
