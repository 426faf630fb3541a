"""The real handlers on fakes: what each use case changes and which events it commits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from catalog.domain import commands, events
from catalog.domain.errors import DuplicateSku, InvalidQuantity, ProductNotFound
from catalog.domain.values import Line, Shortage
from catalog.service_layer import handlers, views

from ..fakes import FakeUnitOfWork


async def _create(uow: FakeUnitOfWork, sku: str = "SNK-1", stock: int = 5, **extra: object) -> int:
    command = commands.CreateProduct(sku=sku, name="Air Max", price_cents=12_000, currency="EUR", stock=stock, **extra)  # type: ignore[arg-type]
    return (await handlers.create_product(command, uow)).id


async def _reserve(uow: FakeUnitOfWork, order_id: int, *lines: Line) -> handlers.Decision | None:
    decisions = await handlers.reserve_orders([commands.ReserveOrder(order_id, lines)], uow)
    return decisions[0] if decisions else None


async def test_create_commits_details_and_the_first_stock_version() -> None:
    uow = FakeUnitOfWork()
    product_id = await _create(uow)
    assert uow.committed == [
        events.ProductDetailsChanged(product_id, "SNK-1", "Air Max", 12_000, "EUR", None),
        events.StockLevelChanged(product_id, 5, 1, None),
    ]


async def test_duplicate_sku_is_refused_and_commits_nothing() -> None:
    uow = FakeUnitOfWork()
    await _create(uow)
    with pytest.raises(DuplicateSku):
        await _create(uow)
    assert len(uow.committed) == 2


async def test_restock_bumps_the_version_and_publishes() -> None:
    uow = FakeUnitOfWork()
    product_id = await _create(uow, stock=0)
    level = await handlers.restock(commands.Restock(product_id, 3), uow)
    assert (level.available, level.version) == (3, 2)
    assert uow.committed[-1] == events.StockLevelChanged(product_id, 3, 2, None)
    with pytest.raises(ProductNotFound):
        await handlers.restock(commands.Restock(999, 1), uow)
    with pytest.raises(InvalidQuantity):
        await handlers.restock(commands.Restock(product_id, 0), uow)


async def test_update_emits_details_and_only_reschedules_when_asked() -> None:
    uow = FakeUnitOfWork()
    product_id = await _create(uow)
    starts = uow.clock() + timedelta(hours=1)
    await handlers.update_product(commands.UpdateProduct(product_id, "Air Max 90", 13_000), uow)
    assert uow.committed[-1] == events.ProductDetailsChanged(product_id, "SNK-1", "Air Max 90", 13_000, "EUR", None)
    await handlers.update_product(
        commands.UpdateProduct(product_id, "Air Max 90", 13_000, sale_starts_at=starts, change_sale_start=True), uow
    )
    assert uow.committed[-1] == events.StockLevelChanged(product_id, 5, 2, starts)
    with pytest.raises(ProductNotFound):
        await handlers.update_product(commands.UpdateProduct(999, "x", 1), uow)


async def test_an_order_reserves_every_line_in_one_go() -> None:
    uow = FakeUnitOfWork()
    a, b = await _create(uow, "A", stock=5), await _create(uow, "B", stock=2)
    decision = await _reserve(uow, 10, Line(b, 1), Line(a, 2), Line(b, 1))
    assert decision == events.OrderReserved(10, (Line(a, 2), Line(b, 2)))
    assert uow.committed[-3:] == [
        events.StockLevelChanged(a, 3, 2, None),
        events.StockLevelChanged(b, 0, 2, None),
        decision,
    ]
    assert await uow.reservations.reserved(10) == (Line(a, 2), Line(b, 2))


async def test_a_short_line_rejects_the_whole_order_and_takes_nothing() -> None:
    uow = FakeUnitOfWork()
    a, b = await _create(uow, "A", stock=5), await _create(uow, "B", stock=1)
    decision = await _reserve(uow, 11, Line(a, 2), Line(b, 3))
    assert decision == events.OrderRejected(11, "insufficient_stock", (Shortage(b, 3, 1, "insufficient_stock"),))
    assert (await views.product(uow, a)).available == 5  # the first line took nothing
    assert (await views.product(uow, a)).version == 1
    assert await uow.reservations.reserved(11) == ()
    assert uow.committed[-1] == decision
    single = await _reserve(uow, 15, Line(b, 2))
    assert isinstance(single, events.OrderRejected)
    assert await uow.reservations.reserved(15) == ()
    assert (await views.product(uow, b)).available == 1


async def test_unknown_products_and_sales_not_started_are_named() -> None:
    uow = FakeUnitOfWork()
    drop = await _create(uow, "DROP", sale_starts_at=uow.clock() + timedelta(minutes=5))
    early = await _reserve(uow, 12, Line(drop, 1))
    assert early == events.OrderRejected(12, "not_on_sale", (Shortage(drop, 1, 5, "not_on_sale"),))
    unknown = await _reserve(uow, 13, Line(drop, 1), Line(4242, 1))
    assert isinstance(unknown, events.OrderRejected) and unknown.reason == "unknown_product"
    uow.clock.advance(300)
    on_time = await _reserve(uow, 14, Line(drop, 1))
    assert isinstance(on_time, events.OrderReserved)


async def test_out_of_range_lines_are_rejected_without_touching_stock() -> None:
    uow = FakeUnitOfWork()
    a = await _create(uow, "A")
    decision = await _reserve(uow, 15, Line(a, 1), Line(-3, 1))
    assert isinstance(decision, events.OrderRejected) and decision.reason == "unknown_product"
    assert (await views.product(uow, a)).available == 5


async def test_the_same_order_twice_reserves_once() -> None:
    uow = FakeUnitOfWork()
    a = await _create(uow, "A", stock=5)
    await _reserve(uow, 20, Line(a, 2))
    assert await _reserve(uow, 20, Line(a, 2)) is None
    assert (await views.product(uow, a)).available == 3


async def test_release_puts_units_back_once() -> None:
    uow = FakeUnitOfWork()
    a = await _create(uow, "A", stock=5)
    await _reserve(uow, 21, Line(a, 2))
    assert await handlers.release_order(commands.ReleaseOrder(21), uow) == (Line(a, 2),)
    assert uow.committed[-2:] == [events.StockLevelChanged(a, 5, 3, None), events.OrderReleased(21, (Line(a, 2),))]
    committed = len(uow.committed)
    assert await handlers.release_order(commands.ReleaseOrder(21), uow) == ()
    assert await handlers.release_order(commands.ReleaseOrder(999), uow) == ()
    assert len(uow.committed) == committed
    assert (await views.product(uow, a)).available == 5


async def test_a_release_that_overtakes_its_order_turns_the_order_away() -> None:
    uow = FakeUnitOfWork()
    a = await _create(uow, "A", stock=5)
    await handlers.release_order(commands.ReleaseOrder(30), uow)
    assert await _reserve(uow, 30, Line(a, 1)) is None
    assert (await views.product(uow, a)).available == 5


async def test_releasing_a_rejected_order_changes_nothing() -> None:
    uow = FakeUnitOfWork()
    a = await _create(uow, "A", stock=1)
    await _reserve(uow, 31, Line(a, 2))
    assert await handlers.release_order(commands.ReleaseOrder(31), uow) == ()
    assert (await views.product(uow, a)).available == 1


async def test_due_sales_are_announced_once() -> None:
    uow = FakeUnitOfWork()
    soon = uow.clock() + timedelta(seconds=30)
    drop = await _create(uow, "DROP", sale_starts_at=soon)
    await _create(uow, "LATER", sale_starts_at=soon + timedelta(hours=1))
    assert await handlers.announce_due_sales(commands.AnnounceDueSales(), uow) == []
    uow.clock.advance(30)
    announced = await handlers.announce_due_sales(commands.AnnounceDueSales(), uow)
    assert [(level.product_id, level.version) for level in announced] == [(drop, 2)]
    assert uow.committed[-1] == events.StockLevelChanged(drop, 5, 2, soon)
    assert await handlers.announce_due_sales(commands.AnnounceDueSales(), uow) == []


async def test_views_keep_the_asked_order_and_skip_unknown_ids() -> None:
    uow = FakeUnitOfWork()
    a, b = await _create(uow, "A"), await _create(uow, "B")
    assert [p.id for p in await views.products_by_ids(uow, [b, 77, a, b])] == [b, a]
    assert [p.id for p in await views.page(uow, after=a, limit=10)] == [b]
    with pytest.raises(ProductNotFound):
        await views.product(uow, 77)


async def test_a_batch_is_served_in_arrival_order_with_one_version_per_product() -> None:
    uow = FakeUnitOfWork()
    a, b = await _create(uow, "A", stock=3), await _create(uow, "B", stock=9)
    await _reserve(uow, 39, Line(a, 1))  # decided before: skipped when it comes again
    batch = [
        commands.ReserveOrder(40, (Line(a, 2),)),
        commands.ReserveOrder(39, (Line(a, 1),)),
        commands.ReserveOrder(41, (Line(a, 1), Line(b, 1))),
        commands.ReserveOrder(42, (Line(b, 2),)),
    ]
    decisions = await handlers.reserve_orders(batch, uow)
    assert decisions == [
        events.OrderReserved(40, (Line(a, 2),)),
        events.OrderRejected(41, "insufficient_stock", (Shortage(a, 1, 0, "insufficient_stock"),)),
        events.OrderReserved(42, (Line(b, 2),)),
    ]
    assert uow.committed[-5:] == [
        events.StockLevelChanged(a, 0, 3, None),
        events.StockLevelChanged(b, 7, 2, None),
        *decisions,
    ]
    assert await uow.reservations.reserved(41) == ()
    assert await uow.reservations.reserved(42) == (Line(b, 2),)
    assert await handlers.reserve_orders(batch, uow) == []  # every one decided now
