"""The use cases on in-memory fakes: what each commits, and what it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orders.domain import commands
from orders.domain.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    NotAllowed,
    OrderNotFound,
    UnknownProducts,
)
from orders.domain.events import OrderCreated
from orders.domain.values import Actor, Item, Line, Status
from orders.service_layer import handlers, views

from ..fakes import FakeUnitOfWork

ALICE = Actor("alice", tenant_id="acme")
CARL = Actor("carl", tenant_id="acme")
BOB = Actor("bob")
STAFF = Actor("sam", is_staff=True)
WINDOW = timedelta(minutes=15)
S = Status


@pytest.fixture
async def uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for product_id, price, currency in ((1, 2500, "EUR"), (2, 300, "EUR"), (3, 900, "USD")):
        await handlers.record_product(
            commands.RecordProduct(product_id, f"p{product_id}", price, currency, uow.clock()), uow
        )
    return uow


def place(actor: Actor = ALICE, key: str = "k1", *items: Item, cart_id: str | None = "cart-1") -> commands.PlaceOrder:
    return commands.PlaceOrder(actor, key, items or (Item(1, 2), Item(2, 1)), cart_id)


async def placed(uow: FakeUnitOfWork, actor: Actor = ALICE, key: str = "k1") -> int:
    return (await handlers.place_order(place(actor, key), uow)).order.id


async def confirmed(uow: FakeUnitOfWork, actor: Actor = ALICE, key: str = "k1") -> int:
    order_id = await placed(uow, actor, key)
    await handlers.confirm_orders([commands.ConfirmOrder(order_id, WINDOW)], uow)
    return order_id


async def status_of(uow: FakeUnitOfWork, order_id: int) -> Status:
    order = await uow.orders.get(order_id)
    assert order is not None
    return order.status


async def test_placing_prices_from_the_read_model_and_commits_placed_and_pending(uow: FakeUnitOfWork) -> None:
    result = await handlers.place_order(place(), uow)
    order = result.order
    assert not result.replayed
    assert order.lines == (Line(1, 2, 2500), Line(2, 1, 300)) and order.total_cents == 5300
    assert (order.status, order.version, order.cart_id, order.tenant_id) == (S.PENDING, 1, "cart-1", "acme")
    assert isinstance(uow.committed[0], OrderCreated) and uow.statuses(order.id) == [S.PENDING]
    assert uow.store.offsets == {f"order:{order.id}": 1, "user#alice": 1, "tenant:acme": 1}
    assert result.stream == uow.published[f"order:{order.id}"] and result.stream.offset == order.version


async def test_the_same_key_and_body_returns_the_same_order_without_new_events(uow: FakeUnitOfWork) -> None:
    first = await handlers.place_order(place(), uow)
    committed = len(uow.committed)
    again = await handlers.place_order(place(ALICE, "k1", Item(2, 1), Item(1, 2)), uow)  # same lines, reordered
    assert again.replayed and again.order.id == first.order.id and again.stream is None
    assert len(uow.committed) == committed and len(uow.store.orders) == 1


async def test_the_same_key_with_another_body_is_refused(uow: FakeUnitOfWork) -> None:
    await handlers.place_order(place(), uow)
    with pytest.raises(IdempotencyKeyReused):
        await handlers.place_order(place(ALICE, "k1", Item(1, 3)), uow)
    assert len(uow.store.orders) == 1


async def test_keys_belong_to_their_user(uow: FakeUnitOfWork) -> None:
    mine = await placed(uow, ALICE, "shared")
    theirs = await placed(uow, BOB, "shared")
    assert mine != theirs


async def test_an_unknown_product_is_refused_and_leaves_the_key_free(uow: FakeUnitOfWork) -> None:
    with pytest.raises(UnknownProducts):
        await handlers.place_order(place(ALICE, "k9", Item(1, 1), Item(77, 1)), uow)
    assert uow.store.orders == {} and uow.store.keys == {} and uow.committed == []
    await handlers.record_product(commands.RecordProduct(77, "new", 100, "EUR", uow.clock()), uow)
    retried = await handlers.place_order(place(ALICE, "k9", Item(1, 1), Item(77, 1)), uow)
    assert retried.order.total_cents == 2600 and not retried.replayed


async def test_stock_reserved_confirms_once_and_duplicates_change_nothing(uow: FakeUnitOfWork) -> None:
    order_id = await placed(uow)
    [first] = await handlers.confirm_orders([commands.ConfirmOrder(order_id, WINDOW)], uow)
    assert first.payment_due_at == uow.clock() + WINDOW
    assert await handlers.confirm_orders([commands.ConfirmOrder(order_id, WINDOW)], uow) == []
    assert await handlers.reject_orders([commands.RejectOrder(order_id, "insufficient_stock")], uow) == []
    assert uow.statuses(order_id) == [S.PENDING, S.CONFIRMED]


async def test_stock_rejected_rejects_with_the_reason_and_a_late_reservation_is_ignored(uow: FakeUnitOfWork) -> None:
    order_id = await placed(uow)
    [rejected] = await handlers.reject_orders([commands.RejectOrder(order_id, "insufficient_stock")], uow)
    assert rejected.reason == "insufficient_stock"
    assert await handlers.confirm_orders([commands.ConfirmOrder(order_id, WINDOW)], uow) == []
    assert uow.statuses(order_id) == [S.PENDING, S.REJECTED]


async def test_a_reservation_after_a_cancellation_is_ignored(uow: FakeUnitOfWork) -> None:
    order_id = await placed(uow)
    await handlers.cancel_order(commands.CancelOrder(ALICE, order_id), uow)
    assert await handlers.confirm_orders([commands.ConfirmOrder(order_id, WINDOW)], uow) == []
    assert await status_of(uow, order_id) is S.CANCELLED


async def test_saga_events_for_an_unknown_order_are_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(OrderNotFound):
        await handlers.confirm_orders([commands.ConfirmOrder(404, WINDOW)], uow)


async def test_a_batch_of_reservations_confirms_in_one_commit_and_skips_orders_that_moved_on(
    uow: FakeUnitOfWork,
) -> None:
    first, cancelled, second = await placed(uow, ALICE, "1"), await placed(uow, BOB, "2"), await placed(uow, CARL, "3")
    await handlers.cancel_order(commands.CancelOrder(BOB, cancelled), uow)
    commits = uow.commits
    batch = [commands.ConfirmOrder(i, WINDOW) for i in (second, cancelled, first, second)]  # the last: a duplicate
    confirmed = await handlers.confirm_orders(batch, uow)
    assert [order.id for order in confirmed] == [second, first] and uow.commits == commits + 1
    assert [await status_of(uow, i) for i in (first, cancelled, second)] == [S.CONFIRMED, S.CANCELLED, S.CONFIRMED]
    assert uow.statuses(second) == [S.PENDING, S.CONFIRMED] and uow.statuses(cancelled)[-1] == S.CANCELLED


async def test_a_batch_of_rejections_keeps_each_reason_and_skips_orders_that_moved_on(uow: FakeUnitOfWork) -> None:
    pending, other = await placed(uow, ALICE, "1"), await placed(uow, BOB, "2")
    already = await confirmed(uow, CARL, "3")
    batch = [
        commands.RejectOrder(already, "insufficient_stock"),
        commands.RejectOrder(other, "product_unavailable"),
        commands.RejectOrder(pending, "insufficient_stock"),
    ]
    rejected = await handlers.reject_orders(batch, uow)
    assert [(order.id, order.reason) for order in rejected] == [
        (other, "product_unavailable"),
        (pending, "insufficient_stock"),
    ]
    assert await status_of(uow, already) is S.CONFIRMED and uow.statuses(already) == [S.PENDING, S.CONFIRMED]


async def test_a_batch_with_an_unknown_order_fails_whole_and_changes_nothing(uow: FakeUnitOfWork) -> None:
    order_id = await placed(uow)
    with pytest.raises(OrderNotFound):
        await handlers.confirm_orders([commands.ConfirmOrder(i, WINDOW) for i in (order_id, 404)], uow)
    assert await status_of(uow, order_id) is S.PENDING and uow.statuses(order_id) == [S.PENDING]


async def test_the_full_happy_path_bumps_the_version_and_the_channel_together(uow: FakeUnitOfWork) -> None:
    order_id = await confirmed(uow)
    await handlers.pay_order(commands.PayOrder(ALICE, order_id), uow)
    for step in (S.PACKED, S.SHIPPED, S.DELIVERED):
        await handlers.advance_order(commands.AdvanceOrder(STAFF, order_id, step), uow)
    order = await uow.orders.get(order_id)
    assert order is not None and (order.status, order.version) == (S.DELIVERED, 6)
    assert [h.status for h in order.history] == [S.PENDING, S.CONFIRMED, S.PAID, S.PACKED, S.SHIPPED, S.DELIVERED]
    assert uow.store.offsets[f"order:{order_id}"] == 6


async def test_paying_is_for_the_owner_and_strangers_do_not_learn_the_order_exists(uow: FakeUnitOfWork) -> None:
    order_id = await confirmed(uow)
    with pytest.raises(OrderNotFound):
        await handlers.pay_order(commands.PayOrder(BOB, order_id), uow)
    with pytest.raises(NotAllowed):
        await handlers.pay_order(commands.PayOrder(CARL, order_id), uow)
    with pytest.raises(IllegalTransition) as twice:
        await handlers.pay_order(commands.PayOrder(ALICE, await placed(uow, ALICE, "k2")), uow)
    assert twice.value.extra() == {"status": "pending"}


async def test_paying_after_the_window_expires_the_order_and_says_so(uow: FakeUnitOfWork) -> None:
    order_id = await confirmed(uow)
    uow.clock.advance(WINDOW.total_seconds())
    with pytest.raises(IllegalTransition) as late:
        await handlers.pay_order(commands.PayOrder(ALICE, order_id), uow)
    assert late.value.extra() == {"status": "expired"}
    assert await status_of(uow, order_id) is S.EXPIRED and uow.statuses(order_id)[-1] == S.EXPIRED


async def test_illegal_warehouse_steps_are_refused_and_change_nothing(uow: FakeUnitOfWork) -> None:
    order_id = await confirmed(uow)
    with pytest.raises(IllegalTransition):
        await handlers.advance_order(commands.AdvanceOrder(STAFF, order_id, S.SHIPPED), uow)
    assert await status_of(uow, order_id) is S.CONFIRMED and uow.statuses(order_id) == [S.PENDING, S.CONFIRMED]


async def test_cancelling_is_for_the_owner_or_staff_until_it_ships(uow: FakeUnitOfWork) -> None:
    first = await confirmed(uow, ALICE, "a")
    with pytest.raises(NotAllowed):
        await handlers.cancel_order(commands.CancelOrder(CARL, first), uow)
    with pytest.raises(OrderNotFound):
        await handlers.cancel_order(commands.CancelOrder(BOB, first), uow)
    cancelled = await handlers.cancel_order(commands.CancelOrder(ALICE, first), uow)
    assert cancelled.status is S.CANCELLED and cancelled.reason == "cancelled by the customer"
    shipped = await confirmed(uow, ALICE, "b")
    await handlers.pay_order(commands.PayOrder(ALICE, shipped), uow)
    await handlers.advance_order(commands.AdvanceOrder(STAFF, shipped, S.PACKED), uow)
    await handlers.advance_order(commands.AdvanceOrder(STAFF, shipped, S.SHIPPED), uow)
    with pytest.raises(IllegalTransition):
        await handlers.cancel_order(commands.CancelOrder(STAFF, shipped), uow)


async def test_the_sweeper_expires_only_overdue_confirmed_orders_in_batches(uow: FakeUnitOfWork) -> None:
    early = await confirmed(uow, ALICE, "1")
    uow.clock.advance(60)
    late = await confirmed(uow, ALICE, "2")
    pending = await placed(uow, ALICE, "3")
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(10), uow) == []
    uow.clock.advance(WINDOW.total_seconds() - 30)
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(10), uow) == [early]
    uow.clock.advance(60)
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(10), uow) == [late]
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(10), uow) == []
    assert await status_of(uow, pending) is S.PENDING


async def test_the_sweeper_stops_at_its_batch_size(uow: FakeUnitOfWork) -> None:
    ids = [await confirmed(uow, ALICE, str(i)) for i in range(3)]
    uow.clock.advance(WINDOW.total_seconds())
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(2), uow) == ids[:2]
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(2), uow) == ids[2:]


async def test_an_older_product_event_never_overwrites_a_newer_one(uow: FakeUnitOfWork) -> None:
    now = uow.clock()
    assert await handlers.record_product(commands.RecordProduct(1, "new", 3000, "EUR", now + timedelta(1)), uow)
    assert not await handlers.record_product(commands.RecordProduct(1, "old", 1000, "EUR", now), uow)
    assert (await uow.catalog.by_ids([1]))[1].price_cents == 3000


async def test_views_show_owner_staff_and_colleagues_but_not_strangers(uow: FakeUnitOfWork) -> None:
    order_id = await placed(uow)
    for actor in (ALICE, STAFF, CARL):
        view = await views.order(uow, order_id, actor)
        assert view.stream.offset == view.order.version == 1
    with pytest.raises(OrderNotFound):
        await views.order(uow, order_id, BOB)


async def test_own_orders_are_newest_first_and_tenant_desks_are_for_members(uow: FakeUnitOfWork) -> None:
    mine = [await placed(uow, ALICE, str(i)) for i in range(3)]
    colleague = await placed(uow, CARL, "c")
    await placed(uow, BOB, "b")
    page = await views.own_orders(uow, ALICE, before=10**9, limit=2)
    assert [o.id for o in page.orders] == mine[:0:-1] and page.stream.offset == 3
    rest = await views.own_orders(uow, ALICE, before=page.orders[-1].id, limit=2)
    assert [o.id for o in rest.orders] == mine[:1]
    desk = await views.tenant_orders(uow, CARL, "acme", before=10**9, limit=10)
    assert [o.id for o in desk.orders] == [colleague, *mine[::-1]] and desk.stream.offset == 4
    with pytest.raises(NotAllowed):
        await views.tenant_orders(uow, BOB, "acme", before=10**9, limit=10)
