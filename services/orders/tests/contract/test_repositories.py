"""One contract, two adapters: the in-memory fakes behave like the SQL repositories.

The SQL side runs each test in a transaction that is rolled back, so tests never see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from orders.adapters.repository import (
    CatalogRepository,
    IdempotencyRepository,
    KeyClaim,
    KeyUse,
    OrderRepository,
    SqlCatalogRepository,
    SqlIdempotencyRepository,
    SqlOrderRepository,
    SqlStreamRepository,
    StreamRepository,
)
from orders.domain.model import Order
from orders.domain.pricing import CatalogProduct
from orders.domain.values import Actor, Line, Status

from ..fakes import FakeCatalogRepository, FakeIdempotencyRepository, FakeOrderRepository, FakeStreamRepository, Store

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Repos:
    orders: OrderRepository
    keys: IdempotencyRepository
    catalog: CatalogRepository
    streams: StreamRepository


@pytest.fixture(scope="module")
def database_url(orders_database: Callable[[str], str]) -> str:
    return orders_database("contract")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["fake", "sql"])
async def repos(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Repos]:
    if request.param == "fake":
        store = Store()
        yield Repos(
            FakeOrderRepository(store),
            FakeIdempotencyRepository(store),
            FakeCatalogRepository(store),
            FakeStreamRepository(store),
        )
        return
    async with AsyncSession(engine) as session:
        yield Repos(
            SqlOrderRepository(session),
            SqlIdempotencyRepository(session),
            SqlCatalogRepository(session),
            SqlStreamRepository(session),
        )
        await session.rollback()


def user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def new_order(repos: Repos, user_id: str, *, tenant: str | None = None, at: datetime = NOW) -> Order:
    order = Order.place(
        order_id=(await repos.keys.claim(user_id, uuid.uuid4().hex, "hash")).order_id,
        actor=Actor(user_id, tenant_id=tenant),
        cart_id="cart",
        lines=(Line(5, 1, 700), Line(3, 2, 100)),
        currency="EUR",
        at=at,
    )
    await repos.orders.add_many([order])
    return order


async def test_claims_draw_unique_increasing_order_ids(repos: Repos) -> None:
    ids = [(await repos.keys.claim(user(), uuid.uuid4().hex, "h")).order_id for _ in range(3)]
    assert ids == sorted(set(ids)) and len(ids) == 3


async def test_an_order_round_trips_with_lines_in_order_and_history(repos: Repos) -> None:
    order = await new_order(repos, user(), tenant="acme")
    found = await repos.orders.get(order.id, for_update=True)
    assert found is not None and found.events == []
    assert (found.user_id, found.tenant_id, found.cart_id, found.currency) == (order.user_id, "acme", "cart", "EUR")
    assert found.lines == (Line(5, 1, 700), Line(3, 2, 100)) and found.total_cents == 900
    assert (found.status, found.version, found.created_at, found.payment_due_at) == (Status.PENDING, 1, NOW, None)
    assert [(h.version, h.status, h.at) for h in found.history] == [(1, Status.PENDING, NOW)]
    assert await repos.orders.get(order.id + 10_000) is None


async def test_many_orders_come_by_ascending_id_once_each_and_unknown_ids_are_left_out(repos: Repos) -> None:
    owner = user()
    first, second, third = [await new_order(repos, owner, tenant="acme") for _ in range(3)]
    for for_update in (False, True):
        found = await repos.orders.get_many([third.id, first.id + 10_000, first.id, third.id], for_update=for_update)
        assert [o.id for o in found] == [first.id, third.id]
    [one] = await repos.orders.get_many([second.id], for_update=True)
    assert (one.user_id, one.tenant_id, one.lines, one.events) == (owner, "acme", second.lines, [])
    assert [(h.version, h.status) for h in one.history] == [(1, Status.PENDING)]
    assert await repos.orders.get_many([]) == []


async def test_saving_writes_the_state_and_appends_history(repos: Repos) -> None:
    order = await new_order(repos, user())
    other = await new_order(repos, user())
    order.confirm(NOW + timedelta(seconds=1), timedelta(minutes=5))
    other.reject("insufficient_stock", NOW + timedelta(seconds=1))
    await repos.orders.save_many([order, other])
    order.cancel(Actor(order.user_id), NOW + timedelta(seconds=2), "changed my mind")
    await repos.orders.save_many([order])
    await repos.orders.save_many([])
    rejected = await repos.orders.get(other.id)
    assert rejected is not None and (rejected.status, rejected.version) == (Status.REJECTED, 2)
    assert [(h.version, h.status) for h in rejected.history] == [(1, Status.PENDING), (2, Status.REJECTED)]
    found = await repos.orders.get(order.id)
    assert found is not None
    assert (found.status, found.version, found.reason) == (Status.CANCELLED, 3, "changed my mind")
    assert found.payment_due_at == NOW + timedelta(minutes=5, seconds=1)
    assert [(h.version, h.status, h.reason) for h in found.history] == [
        (1, Status.PENDING, None),
        (2, Status.CONFIRMED, None),
        (3, Status.CANCELLED, "changed my mind"),
    ]


async def test_overdue_finds_confirmed_orders_past_their_due_time_earliest_first(repos: Repos) -> None:
    # A far-future clock keeps orders of other (committed) tests out of the way: only ours are due.
    base = NOW + timedelta(days=3650 + int(uuid.uuid4().int % 1000))
    owner = user()
    late, early, pending, paid = [await new_order(repos, owner, at=base) for _ in range(4)]
    late.confirm(base, timedelta(seconds=20))
    early.confirm(base, timedelta(seconds=10))
    paid.confirm(base, timedelta(seconds=5))
    paid.pay(Actor(owner), base)
    await repos.orders.save_many([late, early, paid])
    before_any = await repos.orders.overdue(base + timedelta(seconds=9), limit=10)
    assert [o.id for o in before_any if o.user_id == owner] == []
    due = await repos.orders.overdue(base + timedelta(seconds=20), limit=10)
    assert [o.id for o in due if o.user_id == owner] == [early.id, late.id]
    assert [o.id for o in await repos.orders.overdue(base + timedelta(seconds=20), limit=1)] == [early.id]
    assert pending.status is Status.PENDING


async def test_pages_are_newest_first_per_user_or_tenant(repos: Repos) -> None:
    alice, carl, tenant = user(), user(), f"t-{uuid.uuid4().hex[:6]}"
    a1, a2, a3 = [await new_order(repos, alice, tenant=tenant) for _ in range(3)]
    c1 = await new_order(repos, carl, tenant=tenant)
    await new_order(repos, user())
    first = await repos.orders.page(user_id=alice, before=2**62, limit=2)
    assert [o.id for o in first] == [a3.id, a2.id]
    assert [o.id for o in await repos.orders.page(user_id=alice, before=a2.id, limit=2)] == [a1.id]
    desk = await repos.orders.page(tenant_id=tenant, before=2**62, limit=10)
    assert [o.id for o in desk] == [c1.id, a3.id, a2.id, a1.id]
    assert desk[0].lines == (Line(5, 1, 700), Line(3, 2, 100))


async def test_an_idempotency_key_is_claimed_once_per_user(repos: Repos) -> None:
    alice, key = user(), uuid.uuid4().hex
    mine = await repos.keys.claim(alice, key, "h1")
    assert not mine.earlier and mine.request_hash == "h1"
    assert await repos.keys.claim(alice, key, "h2") == KeyUse("h1", mine.order_id, earlier=True)
    assert await repos.keys.claim(alice, key, "h1") == KeyUse("h1", mine.order_id, earlier=True)
    bobs = await repos.keys.claim(user(), key, "h1")
    assert not bobs.earlier and bobs.order_id > mine.order_id


async def test_many_keys_are_claimed_at_once_and_those_claimed_before_get_no_id(repos: Repos) -> None:
    alice, bob, key = user(), user(), uuid.uuid4().hex
    earlier = await repos.keys.claim(alice, key, "h1")
    claims = [KeyClaim(bob, key, "h1"), KeyClaim(alice, key, "h1"), KeyClaim(alice, uuid.uuid4().hex, "h2")]
    bobs, alices_earlier, alices_new = await repos.keys.claim_many(claims)
    assert alices_earlier is None
    assert bobs is not None and alices_new is not None and earlier.order_id < bobs < alices_new
    assert await repos.keys.claim(bob, key, "h1") == KeyUse("h1", bobs, earlier=True)
    assert await repos.keys.claim_many([]) == []


async def test_many_new_orders_are_stored_at_once(repos: Repos) -> None:
    owner = user()
    ids = [(await repos.keys.claim(owner, uuid.uuid4().hex, "h")).order_id for _ in range(2)]
    first = Order.place(
        order_id=ids[0], actor=Actor(owner), cart_id=None, lines=(Line(9, 3, 50),), currency="EUR", at=NOW
    )
    second = Order.place(
        order_id=ids[1],
        actor=Actor(owner, tenant_id="acme"),
        cart_id="c",
        lines=(Line(2, 1, 10), Line(1, 2, 20)),
        currency="USD",
        at=NOW,
    )
    await repos.orders.add_many([first, second])
    await repos.orders.add_many([])
    found = await repos.orders.get_many(ids)
    assert [(o.id, o.tenant_id, o.cart_id, o.currency, o.lines, o.total_cents) for o in found] == [
        (ids[0], None, None, "EUR", (Line(9, 3, 50),), 150),
        (ids[1], "acme", "c", "USD", (Line(2, 1, 10), Line(1, 2, 20)), 50),
    ]
    assert [[(h.version, h.status) for h in o.history] for o in found] == [[(1, Status.PENDING)]] * 2


async def test_a_claim_commits_only_with_the_order_it_drew(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        await SqlIdempotencyRepository(session).claim(user(), uuid.uuid4().hex, "h")
        with pytest.raises(IntegrityError, match="idempotency_keys_order_id_fkey"):
            await session.commit()


async def test_the_catalog_read_model_keeps_the_newest_product(repos: Repos) -> None:
    product_id = int(uuid.uuid4().int % 10**12)
    assert await repos.catalog.record(CatalogProduct(product_id, "v2", 200, "EUR", NOW))
    assert not await repos.catalog.record(CatalogProduct(product_id, "v1", 100, "EUR", NOW - timedelta(seconds=1)))
    assert not await repos.catalog.record(CatalogProduct(product_id, "same", 150, "EUR", NOW))
    assert await repos.catalog.record(CatalogProduct(product_id, "v3", 300, "USD", NOW + timedelta(seconds=1)))
    found = await repos.catalog.by_ids([product_id, product_id + 1])
    assert list(found) == [product_id]
    assert found[product_id] == CatalogProduct(product_id, "v3", 300, "USD", NOW + timedelta(seconds=1))


async def test_a_channel_never_published_is_at_offset_zero(repos: Repos) -> None:
    position = await repos.streams.position(f"order:{uuid.uuid4().int % 10**12}")
    assert (position.offset, position.epoch) == (0, "")
