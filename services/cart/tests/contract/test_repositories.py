"""One contract, two adapters: the in-memory fakes behave like the SQL repositories.

The SQL side runs each test in a transaction that is rolled back, so tests never see each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from cart.adapters.repository import CartRepository, CatalogRepository, SqlCartRepository, SqlCatalogRepository
from cart.adapters.tables import carts as carts_table
from cart.domain.model import Cart, Listing, Offer, StockLevel, price

from ..fakes import FakeCartRepository, FakeCatalogRepository, Store

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Repos:
    carts: CartRepository
    catalog: CatalogRepository
    fake_store: Store | None = None  # the fakes' state, or
    session: AsyncSession | None = None  # the SQL adapters' transaction

    async def backdate(self, cart_id: str, idle: timedelta) -> None:
        """Make ``cart_id`` look unchanged for ``idle`` (test setup: no port changes the clock)."""
        if self.fake_store is not None:
            self.fake_store.changed_at[cart_id] = datetime.now(UTC) - idle
        else:
            assert self.session is not None
            stmt = sa.update(carts_table).where(carts_table.c.id == cart_id).values(updated_at=sa.func.now() - idle)
            await self.session.execute(stmt)

    async def list_products(self, *product_ids: int, available: int | None = None) -> None:
        for product_id in product_ids:
            await self.catalog.record_listing(Listing(product_id, f"P{product_id}", 100 * product_id, "EUR"), T0)
            if available is not None:
                await self.catalog.record_stock(StockLevel(product_id, available, "in_stock", 1))

    async def store(self, cart: Cart, lines: dict[int, int]) -> Cart:
        """Save ``cart`` with ``lines`` at its next version, shown as priced now."""
        cart.lines = dict(lines)
        cart.advance()
        await self.carts.save(cart, price(cart, await self.catalog.offers(list(lines)), "EUR"))
        return cart


@pytest.fixture(scope="module")
def database_url(cart_database: Callable[[str], str]) -> str:
    return cart_database("contract")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["fake", "sql"])
async def repos(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Repos]:
    if request.param == "fake":
        store = Store()
        yield Repos(FakeCartRepository(store), FakeCatalogRepository(store), fake_store=store)
        return
    async with AsyncSession(engine) as session:
        yield Repos(SqlCartRepository(session), SqlCatalogRepository(session), session=session)
        await session.rollback()


async def test_add_and_get_a_guest_cart(repos: Repos) -> None:
    cart, _ = Cart.for_guest()
    assert await repos.carts.add(cart)
    found = await repos.carts.get(cart.id, for_update=True)
    assert found is not None
    assert (found.id, found.owner_id, found.token_hash, found.status, found.version, found.lines) == (
        cart.id,
        None,
        cart.token_hash,
        "open",
        0,
        {},
    )
    assert await repos.carts.get(cart.id + "x") is None


async def test_a_user_has_at_most_one_open_cart(repos: Repos) -> None:
    first, second = Cart.for_user("alice"), Cart.for_user("alice")
    assert await repos.carts.add(first)
    assert not await repos.carts.add(second)
    assert await repos.carts.get(second.id) is None
    mine = await repos.carts.open_cart_of("alice", for_update=True)
    assert mine is not None and mine.id == first.id
    assert await repos.carts.open_cart_of("bob") is None
    assert await repos.carts.add(Cart.for_user("bob"))


async def test_save_keeps_lines_in_insertion_order_status_and_version(repos: Repos) -> None:
    await repos.list_products(1, 2, 3, available=5)
    cart = Cart.for_user("alice")
    await repos.carts.add(cart)
    await repos.store(cart, {3: 1, 1: 2})
    await repos.store(cart, {3: 4, 1: 2, 2: 1})
    found = await repos.carts.get(cart.id)
    assert found is not None and list(found.lines.items()) == [(3, 4), (1, 2), (2, 1)] and found.version == 2
    found.status = "closed"
    await repos.store(found, {2: 1})
    again = await repos.carts.get(cart.id)
    assert again is not None and (again.lines, again.status, again.version) == ({2: 1}, "closed", 3)
    assert await repos.carts.open_cart_of("alice") is None


async def test_lock_returns_the_carts_found(repos: Repos) -> None:
    first, second = Cart.for_guest()[0], Cart.for_user("alice")
    for cart in (first, second):
        await repos.carts.add(cart)
    locked = await repos.carts.lock([second.id, first.id, "missing"])
    assert sorted(locked) == sorted([first.id, second.id]) and locked[second.id].owner_id == "alice"


async def test_misflagged_carts_are_those_whose_shown_flag_is_now_wrong(repos: Repos) -> None:
    await repos.list_products(1, 2, available=4)
    carts = {}
    for quantity in (2, 4, 6):  # shown at 4 available: short only for 6
        cart = Cart.for_guest()[0]
        await repos.carts.add(cart)
        carts[quantity] = await repos.store(cart, {2: 1, 1: quantity})
    closed = Cart.for_guest()[0]
    await repos.carts.add(closed)
    closed.status = "closed"
    await repos.store(closed, {1: 3})

    versions = iter(range(2, 100))

    async def misflagged(available: int) -> set[int]:
        assert await repos.catalog.record_stock(StockLevel(1, available, "in_stock", next(versions)))
        found = await repos.carts.lock_misflagged(1, 100)
        assert [c.id for c in found] == sorted(c.id for c in found)
        assert all(c.lines[2] == 1 for c in found)
        return {quantity for quantity, cart in carts.items() if cart.id in {c.id for c in found}}

    assert await misflagged(4) == set()
    assert await misflagged(5) == set()
    assert await misflagged(6) == {6}
    assert await misflagged(3) == {4}
    assert await misflagged(0) == {2, 4}
    await repos.catalog.record_stock(StockLevel(2, 1, "low", 2))
    assert await repos.carts.lock_misflagged(2, 100) == []
    assert await repos.carts.lock_misflagged(3, 100) == []  # not listed: nobody holds it either


async def test_mispriced_carts_are_those_shown_another_name_or_price(repos: Repos) -> None:
    await repos.list_products(1, 2, available=9)
    holding = []
    for _ in range(3):
        cart = Cart.for_guest()[0]
        await repos.carts.add(cart)
        holding.append(await repos.store(cart, {1: 1, 2: 1}))
    other = Cart.for_guest()[0]
    await repos.carts.add(other)
    await repos.store(other, {2: 1})
    assert await repos.carts.lock_mispriced(1, 100) == []
    ids = sorted(cart.id for cart in holding)

    await repos.catalog.record_listing(Listing(1, "Renamed", 100, "EUR"), T0 + timedelta(seconds=1))
    assert [c.id for c in await repos.carts.lock_mispriced(1, 100)] == ids
    assert [c.id for c in await repos.carts.lock_mispriced(1, 2)] == ids[:2]
    await repos.catalog.record_listing(Listing(1, "P1", 150, "EUR"), T0 + timedelta(seconds=2))
    assert [c.id for c in await repos.carts.lock_mispriced(1, 100)] == ids
    await repos.catalog.record_listing(Listing(1, "P1", 100, "EUR"), T0 + timedelta(seconds=3))
    assert await repos.carts.lock_mispriced(1, 100) == []  # back to what they show
    assert await repos.carts.lock_mispriced(2, 100) == []


async def test_holding_products_changes_nothing_visible(repos: Repos) -> None:
    await repos.list_products(1, 2, available=4)
    await repos.catalog.hold_products([2, 1, 1, 99])
    assert await repos.catalog.record_stock(StockLevel(1, 3, "low", 2))  # the holder itself may write
    assert (await repos.catalog.offers([1]))[1].available == 3
    assert await repos.catalog.record_listing(Listing(1, "Held", 100, "EUR"), T0 + timedelta(seconds=1))


async def test_listings_and_stock_levels_only_move_forward(repos: Repos) -> None:
    await repos.list_products(1)
    assert await repos.catalog.offers([1, 2]) == {1: Offer(1, "P1", 100, "EUR", 0)}
    renamed = Listing(1, "Renamed", 150, "EUR")
    assert await repos.catalog.record_listing(renamed, T0 + timedelta(seconds=1))
    assert not await repos.catalog.record_listing(Listing(1, "Old", 1, "EUR"), T0)
    assert await repos.catalog.record_stock(StockLevel(1, 7, "in_stock", 3))
    assert not await repos.catalog.record_stock(StockLevel(1, 9, "in_stock", 2))
    assert not await repos.catalog.record_stock(StockLevel(1, 9, "in_stock", 3))
    assert await repos.catalog.record_stock(StockLevel(2, 1, "low", 1))  # stock may arrive before the listing
    assert await repos.catalog.offers([1, 2]) == {1: Offer(1, "Renamed", 150, "EUR", 7)}
    await repos.list_products(2)
    assert (await repos.catalog.offers([2]))[2].available == 1


async def test_idle_guest_carts_are_deleted_oldest_first_and_users_carts_stay(repos: Repos) -> None:
    await repos.list_products(1, available=5)
    guests = []
    for days in (40, 35, 31, 2):
        cart = Cart.for_guest()[0]
        await repos.carts.add(cart)
        await repos.store(cart, {1: 1})
        await repos.backdate(cart.id, timedelta(days=days))
        guests.append(cart.id)
    closed = Cart.for_guest()[0]  # merged into a user's cart long ago
    await repos.carts.add(closed)
    closed.status = "closed"
    await repos.store(closed, {})
    await repos.backdate(closed.id, timedelta(days=90))
    user_cart = Cart.for_user("alice")
    await repos.carts.add(user_cart)
    await repos.backdate(user_cart.id, timedelta(days=400))

    idle_since = datetime.now(UTC) - timedelta(days=30)
    assert set(await repos.carts.delete_idle_guest_carts(idle_since, 2)) == {closed.id, guests[0]}  # oldest
    assert set(await repos.carts.delete_idle_guest_carts(idle_since, 10)) == set(guests[1:3])
    assert await repos.carts.delete_idle_guest_carts(idle_since, 10) == []
    assert [await repos.carts.get(cart_id) for cart_id in guests[:3]] == [None, None, None]
    kept = await repos.carts.get(guests[3])
    assert kept is not None and kept.lines == {1: 1}
    assert await repos.carts.get(user_cart.id) is not None
