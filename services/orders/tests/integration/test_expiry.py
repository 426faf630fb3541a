"""Expiry: unpaid confirmed orders expire (and say so on the bus), with several sweepers, after restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from flashline_contracts.events import StockReserved
from flashline_contracts.events.catalog import ReservedLine
from flashline_service.database import Database
from flashline_service.testing import ThrowawayVhosts, app_client
from orders.adapters.tables import order_history
from orders.bootstrap import build_app
from orders.domain import commands
from orders.domain.values import Actor, Item, Status
from orders.service_layer import handlers
from orders.service_layer.integration import OutboxWriter
from orders.service_layer.unit_of_work import SqlUnitOfWork

from ..support import CatalogBus, Tap, auth, eventually, settings_for, unique

WINDOW = timedelta(seconds=0.5)


@pytest.fixture(scope="module")
def vhost_url(throwaway_vhosts: ThrowawayVhosts) -> str:
    return throwaway_vhosts.create("orders-expiry")


def unit_of_work(db: Database, *, ago: timedelta = timedelta(0)) -> SqlUnitOfWork:
    return SqlUnitOfWork(OutboxWriter("orders"), lambda: datetime.now(UTC) - ago, sessions=db.sessions)


async def confirmed_long_ago(db: Database, product: int) -> int:
    """An order confirmed an hour ago, as if the service had been down since."""
    past = unit_of_work(db, ago=timedelta(hours=1))
    placed = await handlers.place_order(commands.PlaceOrder(Actor(unique("u")), unique("k"), (Item(product, 1),)), past)
    await handlers.confirm_orders([commands.ConfirmOrder(placed.order.id, WINDOW)], past)
    return placed.order.id


async def statuses(db: Database, order_ids: list[int]) -> dict[int, list[str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            sa.select(order_history.c.order_id, order_history.c.status)
            .where(order_history.c.order_id.in_(order_ids))
            .order_by(order_history.c.order_id, order_history.c.version)
        )
    found: dict[int, list[str]] = {i: [] for i in order_ids}
    for order_id, status in rows:
        found[order_id].append(status)
    return found


async def test_two_sweepers_expire_each_overdue_order_exactly_once(db: Database, product: int) -> None:
    ids = [await confirmed_long_ago(db, product) for _ in range(12)]
    batches = await asyncio.gather(
        *(handlers.expire_overdue(commands.ExpireOverdueOrders(50), unit_of_work(db)) for _ in range(2))
    )
    expired = [order_id for batch in batches for order_id in batch]
    assert sorted(expired) == sorted(ids)  # all of them, none twice
    assert all(history == ["pending", "confirmed", "expired"] for history in (await statuses(db, ids)).values())


async def test_a_locked_overdue_order_is_skipped_not_waited_for(db: Database, product: int) -> None:
    first, second = await confirmed_long_ago(db, product), await confirmed_long_ago(db, product)
    holder = unit_of_work(db)
    async with holder:
        held = await holder.orders.get(first, for_update=True)  # a customer paying right now, say
        assert held is not None
        other = await asyncio.wait_for(
            handlers.expire_overdue(commands.ExpireOverdueOrders(50), unit_of_work(db)), timeout=5
        )
        assert first not in other and second in other
    assert await handlers.expire_overdue(commands.ExpireOverdueOrders(50), unit_of_work(db)) == [first]


async def test_a_restarted_service_catches_up_on_orders_that_fell_due_while_it_was_down(
    db: Database, product: int, dev_keys: Path, database_url: str, vhost_url: str
) -> None:
    overdue = [await confirmed_long_ago(db, product) for _ in range(3)]
    settings = settings_for(dev_keys, database_url, vhost_url, payment_window_seconds=0.5, sweep_interval_seconds=0.1)
    async with app_client(build_app(settings)):

        async def all_expired() -> bool:
            return all(h[-1] == "expired" for h in (await statuses(db, overdue)).values())

        await eventually(all_expired, timeout=10)


async def test_an_unpaid_order_expires_through_the_bus_and_can_no_longer_be_paid(
    dev_keys: Path, database_url: str, vhost_url: str, db: Database, product: int
) -> None:
    settings = settings_for(dev_keys, database_url, vhost_url, payment_window_seconds=0.5, sweep_interval_seconds=0.1)
    tap = await Tap.open(vhost_url, ["OrderStatusChanged.v1.#", "OrderExpired.v1"])
    try:
        async with app_client(build_app(settings)) as client, CatalogBus.open(vhost_url) as catalog:
            user = unique("alice")
            headers = auth(dev_keys, user)
            body = {"items": [{"product_id": product, "quantity": 1}]}
            response = await client.post("/orders", json=body, headers={**headers, "Idempotency-Key": unique("k")})
            order_id = response.json()["id"]
            await catalog.publish(
                StockReserved(order_id=order_id, lines=(ReservedLine(product_id=product, quantity=1),)), order_id
            )

            async def expired() -> dict | None:
                order = (await client.get(f"/orders/{order_id}", headers=headers)).json()
                return order if order["status"] == Status.EXPIRED else None

            order = await eventually(expired, timeout=10)
            assert [h["status"] for h in order["history"]] == ["pending", "confirmed", "expired"]
            assert order["reason"] == "payment window elapsed"
            late = await client.post(f"/orders/{order_id}/pay", headers=headers)
            assert late.status_code == 409 and late.json()["status"] == "expired"
            await eventually(lambda: _ready(tap.payloads("OrderExpired", order_id=order_id)))
            change = await eventually(
                lambda: _ready(tap.payloads("OrderStatusChanged", order_id=order_id, status="expired"))
            )
            assert change[0]["previous_status"] == "confirmed" and change[0]["version"] == 3
    finally:
        await tap.close()


async def _ready(value: object) -> object:
    return value
