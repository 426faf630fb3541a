"""Fixtures of the database tests: each module gets a fresh, migrated database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from flashline_service.database import Database
from orders.domain import commands
from orders.service_layer import handlers

from ..support import product_id, unit_of_work


@pytest.fixture(scope="module")
def database_url(orders_database: Callable[[str], str], request: pytest.FixtureRequest) -> str:
    """A fresh, migrated orders database named after the module (``test_saga`` -> ``saga``)."""
    return orders_database(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database.connect(database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="module")
async def product(db: Database) -> int:
    """A product the orders service knows (as if from the catalog's feed), priced 40.00 EUR."""
    new_id = product_id()
    await handlers.record_product(
        commands.RecordProduct(new_id, "Boot", 4000, "EUR", datetime.now(UTC)), unit_of_work(db)
    )
    return new_id
