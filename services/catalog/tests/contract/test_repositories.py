"""One contract, two adapters: the in-memory fakes behave like the SQL repositories.

The SQL side runs each test in a transaction that is rolled back, so tests never see each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from catalog.adapters.repository import (
    ProductRepository,
    ReservationRepository,
    SqlProductRepository,
    SqlReservationRepository,
)
from catalog.domain.errors import DuplicateSku
from catalog.domain.model import NewProduct, StockLevel
from catalog.domain.values import Line

from ..fakes import FakeProductRepository, FakeReservationRepository, Store

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Repos:
    products: ProductRepository
    reservations: ReservationRepository


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("contract")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["fake", "sql"])
async def repos(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Repos]:
    if request.param == "fake":
        store = Store()
        yield Repos(FakeProductRepository(store), FakeReservationRepository(store))
        return
    async with AsyncSession(engine) as session:
        yield Repos(SqlProductRepository(session), SqlReservationRepository(session))
        await session.rollback()


def new(sku: str, available: int = 5, starts: datetime | None = None) -> NewProduct:
    return NewProduct(sku, f"name {sku}", 1_000, "EUR", available, starts, sale_announced=starts is None)


async def test_add_get_and_duplicates(repos: Repos) -> None:
    product = await repos.products.add(new("C-ADD", 7))
    assert (product.sku, product.available, product.version, product.sale_announced) == ("C-ADD", 7, 1, True)
    found = await repos.products.get(product.id, for_update=True)
    assert found is not None and (found.id, found.name, found.price_cents) == (product.id, "name C-ADD", 1_000)
    assert await repos.products.get(product.id + 1000) is None
    with pytest.raises(DuplicateSku):
        await repos.products.add(new("C-ADD"))


async def test_levels_are_locked_and_set_in_one_go(repos: Repos) -> None:
    a = await repos.products.add(new("C-LOCK-A", 3))
    b = await repos.products.add(new("C-LOCK-B", 5, NOW + timedelta(minutes=1)))
    locked = await repos.products.lock_levels([b.id, a.id + 10_000, a.id, b.id])
    assert locked == {a.id: StockLevel(a.id, 3, 1), b.id: StockLevel(b.id, 5, 1, b.sale_starts_at)}
    await repos.products.set_levels([StockLevel(a.id, 1, 2), StockLevel(b.id, 4, 2, b.sale_starts_at)])
    assert await repos.products.levels([a.id, b.id]) == {
        a.id: StockLevel(a.id, 1, 2),
        b.id: StockLevel(b.id, 4, 2, b.sale_starts_at),
    }
    await repos.products.set_levels([])  # nothing to write is no statement


async def test_replenish_and_save(repos: Repos) -> None:
    product = await repos.products.add(new("C-REP", 0))
    level = await repos.products.replenish(product.id, 4)
    assert level is not None and (level.available, level.version) == (4, 2)
    assert await repos.products.replenish(product.id + 1000, 1) is None
    current = await repos.products.get(product.id)
    assert current is not None
    renamed = current.revise(name="Renamed", price_cents=5, sale_starts_at=NOW + timedelta(hours=1), now=NOW)[0]
    await repos.products.save(renamed)
    stored = await repos.products.get(product.id)
    assert stored is not None
    assert (stored.name, stored.price_cents, stored.version, stored.sale_announced) == ("Renamed", 5, 3, False)


async def test_lists_by_ids_and_pages_in_id_order(repos: Repos) -> None:
    a, b, c = [await repos.products.add(new(f"C-LIST-{i}")) for i in range(3)]
    assert [p.id for p in await repos.products.by_ids([c.id, a.id, c.id + 1000])] == [a.id, c.id]
    assert [p.id for p in await repos.products.page(after=a.id - 1, limit=2)] == [a.id, b.id]
    assert [p.id for p in await repos.products.page(after=b.id, limit=5)] == [c.id]


async def test_due_sales_are_announced_once_and_the_next_start_is_known(repos: Repos) -> None:
    due = await repos.products.add(new("C-DUE", 2, NOW - timedelta(seconds=1)))
    ahead = await repos.products.add(new("C-AHEAD", 2, NOW + timedelta(hours=2)))
    assert await repos.products.next_sale_start() == due.sale_starts_at
    announced = await repos.products.announce_due(NOW, 10)
    assert [(level.product_id, level.version) for level in announced] == [(due.id, 2)]
    assert await repos.products.announce_due(NOW, 10) == []
    assert await repos.products.next_sale_start() == ahead.sale_starts_at


async def test_orders_are_claimed_once_and_released_once(repos: Repos) -> None:
    product = await repos.products.add(new("C-ORD"))
    other = await repos.products.add(new("C-ORD-2"))
    assert await repos.reservations.claim_orders([501, 511]) == {501, 511}
    assert await repos.reservations.claim_orders([501, 512]) == {512}
    await repos.reservations.add([(501, [Line(other.id, 1), Line(product.id, 2)]), (511, [Line(product.id, 1)])])
    assert await repos.reservations.reserved(501) == (Line(product.id, 2), Line(other.id, 1))
    assert await repos.reservations.release_order(501) == (Line(product.id, 2), Line(other.id, 1))
    assert await repos.reservations.release_order(501) == ()
    assert await repos.reservations.reserved(501) == ()
    assert await repos.reservations.reserved(511) == (Line(product.id, 1),)


async def test_a_release_before_the_claim_leaves_a_tombstone(repos: Repos) -> None:
    assert await repos.reservations.release_order(502) == ()
    assert await repos.reservations.claim_orders([502]) == set()


async def test_a_rejected_order_stays_rejected(repos: Repos) -> None:
    assert await repos.reservations.claim_orders([503]) == {503}
    await repos.reservations.reject_orders([503])
    await repos.reservations.reject_orders([])
    assert await repos.reservations.release_order(503) == ()
    assert await repos.reservations.claim_orders([503]) == set()
