"""Alembic environment of the cart database (run by ``python -m cart migrate``)."""

from cart.adapters.tables import metadata
from flashline_service.alembic_env import run_migrations

run_migrations(metadata)
