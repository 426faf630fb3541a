"""Fixtures shared by the catalog's database-backed tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from catalog.bootstrap import MIGRATIONS_DIR
from flashline_service.testing import ThrowawayDatabases, migrated_database


@pytest.fixture(scope="session")
def catalog_database(throwaway_databases: ThrowawayDatabases) -> Callable[[str], str]:
    """``catalog_database("api")`` -> URL of a fresh, migrated catalog database (call it from sync fixtures)."""

    def make(name: str) -> str:
        return migrated_database(throwaway_databases, f"catalog_{name}", MIGRATIONS_DIR)

    return make
