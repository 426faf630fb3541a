"""Fixtures shared by the cart's database-backed tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cart.bootstrap import MIGRATIONS_DIR
from flashline_service.testing import ThrowawayDatabases, migrated_database


@pytest.fixture(scope="session")
def cart_database(throwaway_databases: ThrowawayDatabases) -> Callable[[str], str]:
    """``cart_database("api")`` -> URL of a fresh, migrated cart database (call it from sync fixtures)."""

    def make(name: str) -> str:
        return migrated_database(throwaway_databases, f"cart_{name}", MIGRATIONS_DIR)

    return make
