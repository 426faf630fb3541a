"""Concurrent placements share a transaction, and each request still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from orders.domain import commands
from orders.domain.errors import IdempotencyKeyReused, InvalidOrder, UnknownProducts
from orders.domain.events import OrderCreated
from orders.domain.values import Actor, Item, Status
from orders.service_layer import handlers
from orders.service_layer.placements import Placements

from ..fakes import FakeClock, FakeUnitOfWork, Store

ALICE = Actor("alice", tenant_id="acme")
BOB = Actor("bob")


def place(actor: Actor, key: str, *items: Item) -> commands.PlaceOrder:
    return commands.PlaceOrder(actor, key, items or (Item(1, 2),), None)


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for product_id, currency in ((1, "EUR"), (2, "EUR"), (3, "USD")):
        await handlers.record_product(commands.RecordProduct(product_id, "p", 100, currency, uow.clock()), uow)
    return uow


async def test_a_batch_places_its_orders_in_one_commit_each_with_its_own_stream(uow: FakeUnitOfWork) -> None:
    commits = uow.commits
    results = await handlers.place_orders([place(ALICE, "a1"), place(BOB, "b1", Item(2, 3)), place(ALICE, "a2")], uow)
    assert uow.commits == commits + 1
    placed = [r for r in results if r is not None]
    assert len(placed) == 3 and len({p.order.id for p in placed}) == 3
    assert [p.order.user_id for p in placed] == ["alice", "bob", "alice"]
    assert placed[1].order.total_cents == 300 and all(p.order.status is Status.PENDING for p in placed)
    assert all(p.stream is not None and p.stream.offset == 1 and not p.replayed for p in placed)
    assert len([e for e in uow.committed if isinstance(e, OrderCreated)]) == 3
    assert uow.store.offsets["user#alice"] == 2


async def test_what_a_batch_cannot_decide_alone_is_left_to_the_single_path(uow: FakeUnitOfWork) -> None:
    await handlers.place_order(place(BOB, "used"), uow)
    cmds = [
        place(ALICE, "k1"),
        place(ALICE, "k2", Item(1, 1), Item(77, 1)),  # unknown product
        place(ALICE, "k3", Item(1, 1), Item(3, 1)),  # two currencies
        place(BOB, "used"),  # claimed before: a replay, or a reused key
        place(ALICE, "k1"),  # the same request twice in one batch
    ]
    results = await handlers.place_orders(cmds, uow)
    assert [r is not None for r in results] == [True, False, False, False, False]
    assert set(uow.store.keys) == {("bob", "used"), ("alice", "k1")}, "nothing claimed for the others"


async def test_a_batch_with_nothing_to_place_commits_nothing(uow: FakeUnitOfWork) -> None:
    commits = uow.commits
    assert await handlers.place_orders([place(ALICE, "k", Item(77, 1))], uow) == [None]
    assert uow.commits == commits and uow.store.keys == {}


async def test_concurrent_requests_each_get_the_answer_a_single_request_would() -> None:
    store, clock = Store(), FakeClock()
    setup = FakeUnitOfWork(clock, store)
    await handlers.record_product(commands.RecordProduct(1, "p", 100, "EUR", clock()), setup)
    placements = Placements(lambda: FakeUnitOfWork(clock, store))
    first = await placements.place(place(ALICE, "k0"))
    results = await asyncio.gather(
        *(placements.place(place(BOB, f"b{n}")) for n in range(10)),
        placements.place(place(ALICE, "k0")),  # a replay
        placements.place(place(ALICE, "k0", Item(1, 5))),  # the key reused for another request
        placements.place(place(ALICE, "k9", Item(77, 1))),  # an unknown product
        placements.place(place(ALICE, "k8", Item(1, 1), Item(1, 1))),  # invalid: never joins a batch
        return_exceptions=True,
    )
    bobs = results[:10]
    assert all(isinstance(r, handlers.Placed) and not r.replayed for r in bobs)
    assert len({r.order.id for r in bobs if isinstance(r, handlers.Placed)}) == 10
    replay = results[10]
    assert isinstance(replay, handlers.Placed) and replay.replayed and replay.order.id == first.order.id
    assert isinstance(results[11], IdempotencyKeyReused)
    assert isinstance(results[12], UnknownProducts)
    assert isinstance(results[13], InvalidOrder)
    assert len(store.orders) == 11
