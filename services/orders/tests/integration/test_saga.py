"""The saga through the real bus: the catalog's decisions move orders, and orders tell the world.

StockReserved / StockRejected are published onto the events exchange as the catalog would; a tap
bound to the same exchange (and one on the push fanout) observes what orders publishes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from flashline_contracts.events import StockRejected, StockReserved
from flashline_contracts.events.catalog import ReservedLine, ShortLine
from flashline_contracts.topology import PUSH_EXCHANGE, REASON_HEADER, dead_letter_queue
from flashline_service.testing import ThrowawayVhosts, app_client
from orders.bootstrap import build_app

from ..support import CatalogBus, Tap, auth, eventually, processed, settings_for, unique

ORDER_EVENTS = ["OrderPlaced.v1", "OrderStatusChanged.v1.#", "OrderCancelled.v1", "OrderExpired.v1"]


@pytest.fixture(scope="module")
def vhost_url(throwaway_vhosts: ThrowawayVhosts) -> str:
    return throwaway_vhosts.create("orders-saga")


@pytest.fixture(scope="module")
async def client(dev_keys: Path, database_url: str, vhost_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(build_app(settings_for(dev_keys, database_url, vhost_url))) as client:
        yield client


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def catalog(vhost_url: str) -> AsyncIterator[CatalogBus]:
    async with CatalogBus.open(vhost_url) as bus:
        yield bus


@pytest.fixture(scope="module")
async def tap(vhost_url: str, client: httpx.AsyncClient) -> AsyncIterator[Tap]:
    tap = await Tap.open(vhost_url, ORDER_EVENTS)
    yield tap
    await tap.close()


@pytest.fixture(scope="module")
async def pushes(vhost_url: str, client: httpx.AsyncClient) -> AsyncIterator[Tap]:
    tap = await Tap.open(vhost_url, [""], exchange=PUSH_EXCHANGE)
    yield tap
    await tap.close()


@pytest.fixture(scope="module")
async def shoe(client: httpx.AsyncClient, catalog: CatalogBus, engine: AsyncEngine) -> int:
    return await catalog.product(engine, price_cents=2500)


class Shop:
    def __init__(self, client: httpx.AsyncClient, dev_keys: Path, product: int) -> None:
        self.client = client
        self.keys = dev_keys
        self.product = product

    async def place(self, user: str, *, tenant: str | None = None, quantity: int = 2) -> dict[str, Any]:
        headers = {**auth(self.keys, user, tenant=tenant), "Idempotency-Key": unique("k")}
        body = {"items": [{"product_id": self.product, "quantity": quantity}], "cart_id": f"cart-of-{user}"}
        response = await self.client.post("/orders", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return response.json()

    async def get(self, user: str, order_id: int, *, tenant: str | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}", headers=auth(self.keys, user, tenant=tenant))
        assert response.status_code == 200, response.text
        return response.json()

    async def reaches(self, user: str, order_id: int, status: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            order = await self.get(user, order_id)
            return order if order["status"] == status else None

        return await eventually(check)

    async def post(self, path: str, user: str, role: str = "customer", **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, headers=auth(self.keys, user, role), **kwargs)


@pytest.fixture
def shop(client: httpx.AsyncClient, dev_keys: Path, shoe: int) -> Shop:
    return Shop(client, dev_keys, shoe)


def reserved(order: dict[str, Any]) -> StockReserved:
    lines = tuple(ReservedLine(product_id=i["product_id"], quantity=i["quantity"]) for i in order["items"])
    return StockReserved(order_id=order["id"], lines=lines)


def rejected(order: dict[str, Any]) -> StockRejected:
    item = order["items"][0]
    short = ShortLine(
        product_id=item["product_id"], requested=item["quantity"], available=0, reason="insufficient_stock"
    )
    return StockRejected(order_id=order["id"], reason="insufficient_stock", short_lines=(short,))


async def test_placed_to_delivered_tells_the_bus_and_the_channels_every_step(
    shop: Shop, catalog: CatalogBus, tap: Tap, pushes: Tap
) -> None:
    user, tenant = unique("alice"), unique("acme")
    order = await shop.place(user, tenant=tenant)
    order_id = order["id"]
    placed = (await eventually(lambda: _ready(tap.payloads("OrderPlaced", order_id=order_id))))[0]
    assert (placed["user_id"], placed["tenant_id"], placed["cart_id"], placed["total_cents"]) == (
        user,
        tenant,
        f"cart-of-{user}",
        5000,
    )
    assert placed["lines"] == [{"product_id": shop.product, "quantity": 2, "unit_price_cents": 2500}]

    await catalog.publish(reserved(order), order_id)
    confirmed = await shop.reaches(user, order_id, "confirmed")
    assert confirmed["payment_due_at"] is not None
    assert (await shop.post(f"/orders/{order_id}/pay", user)).status_code == 200
    for step in ("packed", "shipped", "delivered"):
        response = await shop.post(f"/orders/{order_id}/status", "sam", "staff", json={"status": step})
        assert response.status_code == 200 and response.json()["status"] == step

    final = await shop.get(user, order_id)
    statuses = ["pending", "confirmed", "paid", "packed", "shipped", "delivered"]
    assert [h["status"] for h in final["history"]] == statuses
    assert [h["version"] for h in final["history"]] == [1, 2, 3, 4, 5, 6]
    assert final["stream"] == {"offset": 6, "epoch": order["stream"]["epoch"]}

    await eventually(lambda: _ready(len(tap.payloads("OrderStatusChanged", order_id=order_id)) == 6))
    changes = sorted(tap.payloads("OrderStatusChanged", order_id=order_id), key=lambda p: p["version"])
    assert [(c["previous_status"], c["status"]) for c in changes] == list(
        zip([None, *statuses], statuses, strict=False)
    )
    assert all((c["user_id"], c["tenant_id"], c["cart_id"]) == (user, tenant, f"cart-of-{user}") for c in changes)

    channel = f"order:{order_id}"
    await eventually(lambda: _ready(len(pushes.publications(channel)) == 6))
    published = pushes.publications(channel)
    assert [p["offset"] for p in published] == [1, 2, 3, 4, 5, 6]
    assert [p["data"]["status"] for p in published] == statuses
    assert all(p["data"]["version"] == p["offset"] for p in published)
    await eventually(lambda: _ready(len(pushes.publications(f"tenant:{tenant}")) == 6))
    summaries = pushes.publications(f"user#{user}")
    assert [s["data"]["status"] for s in summaries] == statuses and summaries[-1]["data"]["total_cents"] == 5000


async def test_stock_rejected_rejects_with_the_reason_and_late_or_repeated_decisions_change_nothing(
    shop: Shop, catalog: CatalogBus, tap: Tap, engine: AsyncEngine
) -> None:
    user = unique("bob")
    order = await shop.place(user)
    rejection = await catalog.publish(rejected(order), order["id"])
    done = await shop.reaches(user, order["id"], "rejected")
    assert done["reason"] == "insufficient_stock" and done["history"][-1]["reason"] == "insufficient_stock"
    await catalog.redeliver(rejection)
    late = await catalog.publish(reserved(order), order["id"])
    await eventually(lambda: processed(engine, late))
    after = await shop.get(user, order["id"])
    assert (after["status"], after["version"]) == ("rejected", 2)
    assert [c["status"] for c in tap.payloads("OrderStatusChanged", order_id=order["id"])] == ["pending", "rejected"]


async def test_a_duplicate_reservation_confirms_once_and_a_late_one_does_not_undo_payment(
    shop: Shop, catalog: CatalogBus, tap: Tap, engine: AsyncEngine
) -> None:
    user = unique("carol")
    order = await shop.place(user)
    first = await catalog.publish(reserved(order), order["id"])
    await catalog.redeliver(first)  # the same envelope again: the inbox drops it
    await shop.reaches(user, order["id"], "confirmed")
    assert (await shop.post(f"/orders/{order['id']}/pay", user)).status_code == 200
    again = await catalog.publish(reserved(order), order["id"])  # a new copy of the decision
    await eventually(lambda: processed(engine, first, again))
    after = await shop.get(user, order["id"])
    assert (after["status"], after["version"]) == ("paid", 3)
    confirmations = tap.payloads("OrderStatusChanged", order_id=order["id"], status="confirmed")
    assert len(confirmations) == 1


async def test_cancelling_tells_the_catalog_and_a_reservation_arriving_after_is_ignored(
    shop: Shop, catalog: CatalogBus, tap: Tap, engine: AsyncEngine
) -> None:
    user = unique("dave")
    order = await shop.place(user)
    cancel = await shop.post(f"/orders/{order['id']}/cancel", user)
    assert cancel.status_code == 200 and cancel.json()["reason"] == "cancelled by the customer"
    late = await catalog.publish(reserved(order), order["id"])
    await eventually(lambda: processed(engine, late))
    assert (await shop.get(user, order["id"]))["status"] == "cancelled"
    released = await eventually(lambda: _ready(tap.payloads("OrderCancelled", order_id=order["id"])))
    assert released == [{"order_id": order["id"], "reason": "cancelled by the customer"}]
    assert [c["status"] for c in tap.payloads("OrderStatusChanged", order_id=order["id"])] == ["pending", "cancelled"]


async def test_a_decision_for_an_order_we_never_placed_is_dead_lettered_with_the_reason(
    client: httpx.AsyncClient, catalog: CatalogBus, vhost_url: str
) -> None:
    ghost: dict[str, Any] = {"id": 999_999_999_999, "items": [{"product_id": 1, "quantity": 1}]}
    envelope = await catalog.publish(reserved(ghost), ghost["id"])
    connection = await aio_pika.connect(vhost_url)
    try:
        channel = await connection.channel()
        dlq = await channel.declare_queue(dead_letter_queue("orders"), passive=True)

        async def dead_lettered() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await dlq.get(no_ack=True, fail=False)

        message = await eventually(dead_lettered)
        assert message.message_id == str(envelope.event_id)
        assert "order 999999999999 not found" in str(message.headers[REASON_HEADER])
    finally:
        await connection.close()


async def _ready(value: object) -> object:
    return value
