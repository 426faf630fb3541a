"""Reservations through the real bus: nothing oversells, duplicates and reorderings have no effect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aio_pika
import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from catalog.adapters.tables import products, reservations
from catalog.bootstrap import build_app
from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced
from flashline_contracts.events.orders import OrderLine
from flashline_contracts.topology import EVENTS_EXCHANGE
from flashline_messaging.schema import channel_streams, processed_events
from flashline_service.testing import ThrowawayVhosts, app_client, user_token

from ..support import Tap, eventually, settings_for

DECISIONS = ["StockReserved.v1", "StockRejected.v1", "StockReleased.v1", "StockChanged.v1"]


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("reservations")


@pytest.fixture(scope="module")
def vhost_url(throwaway_vhosts: ThrowawayVhosts) -> str:
    return throwaway_vhosts.create("catalog-bus")


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
async def tap(vhost_url: str, client: httpx.AsyncClient) -> AsyncIterator[Tap]:
    tap = await Tap.open(vhost_url, DECISIONS)
    yield tap
    await tap.close()


class OrdersBus:
    """Publishes events as the orders service's relay would (confirmed), returning their envelopes."""

    def __init__(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        self._exchange = exchange

    async def publish(self, event: IntegrationEvent, order_id: int) -> EventEnvelope:
        envelope = EventEnvelope.wrap(event, producer="orders", aggregate_id=order_id)
        await self.redeliver(envelope)
        return envelope

    async def redeliver(self, envelope: EventEnvelope) -> None:
        body = orjson.dumps(envelope.model_dump(mode="json"))
        await self._exchange.publish(aio_pika.Message(body, message_id=str(envelope.event_id)), envelope.topic)


@pytest.fixture(scope="module")
async def orders_bus(vhost_url: str) -> AsyncIterator[OrdersBus]:
    connection = await aio_pika.connect(vhost_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    yield OrdersBus(exchange)
    await connection.close()


def order_id() -> int:
    return uuid.uuid4().int % 10**12


def placed(order: int, product_id: int, quantity: int = 1) -> OrderPlaced:
    line = OrderLine(product_id=product_id, quantity=quantity, unit_price_cents=100)
    return OrderPlaced(order_id=order, user_id="u", lines=(line,), total_cents=100 * quantity, currency="EUR")


async def new_product(client: httpx.AsyncClient, dev_keys: Path, stock: int) -> int:
    staff = {"Authorization": f"Bearer {user_token(dev_keys, 'sam', 'staff')}"}
    body = {"sku": f"BUS-{uuid.uuid4().hex[:8]}", "name": "Drop", "price_cents": 100, "currency": "EUR", "stock": stock}
    response = await client.post("/products", json=body, headers=staff)
    assert response.status_code == 201
    return int(response.json()["id"])


async def available(engine: AsyncEngine, product_id: int) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(products.c.available).where(products.c.id == product_id))).scalar_one()
        )


async def processed(engine: AsyncEngine, *envelopes: EventEnvelope) -> bool:
    ids = [e.event_id for e in envelopes]
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(processed_events.c.event_id.in_(ids))
        return int((await conn.execute(query)).scalar_one()) == len(ids)


async def test_two_hundred_buyers_five_units_exactly_five_reserved(
    client: httpx.AsyncClient, dev_keys: Path, engine: AsyncEngine, tap: Tap, orders_bus: OrdersBus
) -> None:
    product_id = await new_product(client, dev_keys, stock=5)
    orders = [order_id() for _ in range(200)]
    await asyncio.gather(*(orders_bus.publish(placed(order, product_id), order) for order in orders))

    def decided() -> list[dict]:
        return [p for kind in ("StockReserved", "StockRejected") for p in tap.payloads(kind) if p["order_id"] in orders]

    await eventually(lambda: _ready(len(decided()) >= 200), timeout=180)  # generous: CI machines are shared
    reserved = [p for p in tap.payloads("StockReserved") if p["order_id"] in orders]
    rejected = [p for p in tap.payloads("StockRejected") if p["order_id"] in orders]
    assert (len(reserved), len(rejected)) == (5, 195)
    assert {p["reason"] for p in rejected} == {"insufficient_stock"}
    assert all(p["short_lines"][0]["product_id"] == product_id for p in rejected)
    assert await available(engine, product_id) == 0
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                sa.select(sa.func.sum(reservations.c.quantity)).where(reservations.c.product_id == product_id)
            )
        ).scalar_one()
        offset = (
            await conn.execute(
                sa.select(channel_streams.c.top_offset).where(channel_streams.c.channel == f"stock:{product_id}")
            )
        ).scalar_one()
    assert held == 5
    # One publication per committed change (orders arriving together are reserved together):
    # versions are gapless from creation on, the count only goes down and never below zero.
    await eventually(lambda: _ready(len(tap.payloads("StockChanged", product_id=product_id)) == offset))
    changes = sorted((p["version"], p["available"]) for p in tap.payloads("StockChanged", product_id=product_id))
    assert [version for version, _ in changes] == list(range(1, offset + 1))
    counts = [count for _, count in changes]
    assert counts[0] == 5 and counts[-1] == 0 and counts == sorted(counts, reverse=True)
    assert len(set(counts)) == len(counts)


async def test_the_same_event_twice_reserves_once(
    client: httpx.AsyncClient, dev_keys: Path, engine: AsyncEngine, tap: Tap, orders_bus: OrdersBus
) -> None:
    product_id = await new_product(client, dev_keys, stock=5)
    order = order_id()
    first = await orders_bus.publish(placed(order, product_id, 2), order)
    await orders_bus.redeliver(first)  # redelivered: same envelope, same event id
    # Events of one order are handled in arrival order: once the cancel is done, both copies were.
    await orders_bus.publish(OrderCancelled(order_id=order), order)
    await eventually(lambda: _ready(tap.payloads("StockReleased", order_id=order)))
    assert len(tap.payloads("StockReserved", order_id=order)) == 1
    assert tap.payloads("StockReleased", order_id=order)[0]["lines"] == [{"product_id": product_id, "quantity": 2}]
    assert await available(engine, product_id) == 5


async def test_releasing_twice_or_an_unknown_order_is_a_no_op(
    client: httpx.AsyncClient, dev_keys: Path, engine: AsyncEngine, tap: Tap, orders_bus: OrdersBus
) -> None:
    product_id = await new_product(client, dev_keys, stock=3)
    order = order_id()
    await orders_bus.publish(placed(order, product_id, 1), order)
    await orders_bus.publish(OrderExpired(order_id=order), order)
    await eventually(lambda: _ready(tap.payloads("StockReleased", order_id=order)))
    again = await orders_bus.publish(OrderCancelled(order_id=order), order)
    stranger = order_id()
    unknown = await orders_bus.publish(OrderCancelled(order_id=stranger), stranger)
    await eventually(lambda: processed(engine, again, unknown))
    assert len(tap.payloads("StockReleased", order_id=order)) == 1
    assert tap.payloads("StockReleased", order_id=stranger) == []
    assert await available(engine, product_id) == 3


async def test_a_release_that_overtakes_its_order_makes_the_order_a_no_op(
    client: httpx.AsyncClient, dev_keys: Path, engine: AsyncEngine, tap: Tap, orders_bus: OrdersBus
) -> None:
    product_id = await new_product(client, dev_keys, stock=3)
    order = order_id()
    cancel = await orders_bus.publish(OrderCancelled(order_id=order), order)
    await eventually(lambda: processed(engine, cancel))
    late = await orders_bus.publish(placed(order, product_id, 1), order)
    await eventually(lambda: processed(engine, late))
    assert tap.payloads("StockReserved", order_id=order) == []
    assert await available(engine, product_id) == 3


async def test_an_order_naming_an_unknown_product_is_rejected_and_takes_nothing(
    client: httpx.AsyncClient, dev_keys: Path, engine: AsyncEngine, tap: Tap, orders_bus: OrdersBus
) -> None:
    product_id = await new_product(client, dev_keys, stock=3)
    order = order_id()
    lines = (
        OrderLine(product_id=product_id, quantity=1, unit_price_cents=100),
        OrderLine(product_id=10**12, quantity=1, unit_price_cents=100),
    )
    event = OrderPlaced(order_id=order, user_id="u", lines=lines, total_cents=200, currency="EUR")
    await orders_bus.publish(event, order)
    await eventually(lambda: _ready(tap.payloads("StockRejected", order_id=order)))
    [rejected] = tap.payloads("StockRejected", order_id=order)
    assert rejected["reason"] == "unknown_product"
    assert await available(engine, product_id) == 3
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(reservations).where(reservations.c.order_id == order))).all()
    assert rows == []


async def _ready(value: object) -> object:
    return value
