"""What one unit of work leaves in the outbox: publications and events, in order, in few statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa

from flashline_messaging.schema import outbox_table
from flashline_service.database import Database
from orders.domain import commands
from orders.domain.values import Actor, Item
from orders.service_layer import handlers

from ..support import product_id, unique, unit_of_work


async def rows_after(db: Database, last_id: int) -> list[tuple[str, dict]]:
    async with db.sessions() as session:
        found = await session.execute(
            sa.select(outbox_table.c.routing_key, outbox_table.c.body)
            .where(outbox_table.c.id > last_id)
            .order_by(outbox_table.c.id)
        )
        return [(key, orjson.loads(body)) for key, body in found]


async def last_outbox_id(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(sa.select(sa.func.coalesce(sa.func.max(outbox_table.c.id), 0)))).scalar_one())


async def test_each_publication_then_the_events_in_order_and_the_positions_are_reported(db: Database) -> None:
    product = product_id()
    await handlers.record_product(
        commands.RecordProduct(product, "Boot", 4000, "EUR", datetime.now(UTC)), unit_of_work(db)
    )
    user = unique("u")
    start = await last_outbox_id(db)
    uow = unit_of_work(db)
    placed = await handlers.place_order(
        commands.PlaceOrder(Actor(user, tenant_id="acme"), unique("k"), (Item(product, 2),)), uow
    )
    order_id = placed.order.id
    channels = [f"order:{order_id}", "tenant:acme", f"user#{user}"]  # by name
    rows = await rows_after(db, start)
    assert [key for key, _ in rows] == [*channels, "OrderPlaced.v1", "OrderStatusChanged.v1.pending.direct"]
    assert [body["offset"] for _, body in rows[:3]] == [1, uow.published["tenant:acme"].offset, 1]
    assert placed.stream == uow.published[f"order:{order_id}"]
    assert placed.stream is not None and (placed.stream.offset, placed.stream.epoch) == (1, rows[0][1]["epoch"])
    assert [body["payload"]["order_id"] for _, body in rows[3:]] == [order_id, order_id]

    start = await last_outbox_id(db)
    assert len(await handlers.confirm_orders([commands.ConfirmOrder(order_id, timedelta(minutes=5))], uow)) == 1
    rows = await rows_after(db, start)
    assert [key for key, _ in rows] == [*channels, "OrderStatusChanged.v1.confirmed.direct"]
    assert rows[0][1]["offset"] == 2 and rows[0][1]["data"]["status"] == "confirmed"
    assert uow.published[f"order:{order_id}"].offset == 2


async def test_a_batch_publishes_all_its_channels_by_name_then_its_events_in_order(db: Database) -> None:
    product = product_id()
    await handlers.record_product(
        commands.RecordProduct(product, "Boot", 4000, "EUR", datetime.now(UTC)), unit_of_work(db)
    )
    zoe, ann, tenant = unique("zoe"), unique("ann"), unique("t")
    ids = []
    for actor in (Actor(zoe), Actor(ann, tenant_id=tenant), Actor(zoe)):
        place = commands.PlaceOrder(actor, unique("k"), (Item(product, 1),))
        ids.append((await handlers.place_order(place, unit_of_work(db))).order.id)
    batch = [commands.ConfirmOrder(order_id, timedelta(minutes=5)) for order_id in reversed(ids)]
    start = await last_outbox_id(db)
    uow = unit_of_work(db)
    assert len(await handlers.confirm_orders(batch, uow)) == 3
    rows = await rows_after(db, start)
    channels = sorted([*(f"order:{i}" for i in ids), f"user#{zoe}", f"user#{ann}", f"tenant:{tenant}", f"user#{zoe}"])
    assert [key for key, _ in rows] == [*channels, *["OrderStatusChanged.v1.confirmed.direct"] * 3]
    assert [body["payload"]["order_id"] for _, body in rows[len(channels) :]] == ids[::-1]
    assert [body["offset"] for key, body in rows if key == f"user#{zoe}"] == [3, 4]
    assert all(body["offset"] == 2 for key, body in rows if key.startswith("order:"))
    assert uow.published[f"user#{zoe}"].offset == 4


async def test_lines_and_history_round_trip_through_the_one_statement_writes(db: Database) -> None:
    first, second = product_id(), product_id()
    for product, price in ((first, 700), (second, 300)):
        await handlers.record_product(
            commands.RecordProduct(product, "Thing", price, "EUR", datetime.now(UTC)), unit_of_work(db)
        )
    uow = unit_of_work(db)
    placed = await handlers.place_order(
        commands.PlaceOrder(Actor(unique("u")), unique("k"), (Item(second, 3), Item(first, 1))), uow
    )
    await handlers.confirm_orders([commands.ConfirmOrder(placed.order.id, timedelta(minutes=5))], uow)
    async with uow:
        stored = await uow.orders.get(placed.order.id)
    assert stored is not None
    assert [(line.product_id, line.quantity, line.unit_price_cents) for line in stored.lines] == [
        (second, 3, 300),
        (first, 1, 700),
    ]
    assert [(h.version, h.status.value) for h in stored.history] == [(1, "pending"), (2, "confirmed")]
    assert stored.history[0].at == placed.order.created_at and stored.total_cents == 1600
