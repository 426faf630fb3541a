"""Fixtures shared by the orders' database-backed tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flashline_service.testing import ThrowawayDatabases, migrated_database
from orders.bootstrap import MIGRATIONS_DIR


@pytest.fixture(scope="session")
def orders_database(throwaway_databases: ThrowawayDatabases) -> Callable[[str], str]:
    """``orders_database("api")`` -> URL of a fresh, migrated orders database (call it from sync fixtures)."""

    def make(name: str) -> str:
        return migrated_database(throwaway_databases, f"orders_{name}", MIGRATIONS_DIR)

    return make
