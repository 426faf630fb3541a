"""Helpers for the database and broker tests: settings, polling, a catalog double, a tap on the push log."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from cart.adapters.tables import stock_levels
from cart.settings import CartSettings
from flashline_contracts.batches import documents
from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_contracts.events import OrderStatusChanged, ProductChanged, StockChanged
from flashline_contracts.topology import PUSH_EXCHANGE
from flashline_messaging.rabbitmq import RabbitMQEventBus
from flashline_service.testing import eventually


def settings_for(dev_keys: Path, database_url: str, amqp_url: str, **overrides: Any) -> CartSettings:
    return CartSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        trusted_keys_file=dev_keys / "trusted.json",
        signing_key_file=dev_keys / "cart.pem",
        signing_key_id="dev-cart-1",
        **overrides,
    )


class CatalogDouble:
    """Publishes catalog and orders events on the bus as their services' relays would."""

    _ids = itertools.count(random.randrange(1, 2**40))

    def __init__(self, bus: RabbitMQEventBus, engine: AsyncEngine) -> None:
        self._bus = bus
        self._engine = engine
        self._versions: dict[int, int] = {}

    async def publish(self, event: IntegrationEvent, aggregate_id: int) -> EventEnvelope:
        producer = "orders" if isinstance(event, OrderStatusChanged) else "catalog"
        envelope = EventEnvelope.wrap(event, producer=producer, aggregate_id=aggregate_id)
        await self._bus.publish(envelope)
        return envelope

    async def product(self, *, available: int = 10, price_cents: int = 1_500, currency: str = "EUR") -> int:
        """A new product the cart service knows (listing and stock level applied)."""
        product_id = next(self._ids)
        listing = ProductChanged(
            product_id=product_id,
            sku=f"SKU-{product_id}",
            name=f"Sneaker {product_id}",
            price_cents=price_cents,
            currency=currency,
        )
        await self.publish(listing, product_id)
        await self.stock(product_id, available)
        return product_id

    async def stock(self, product_id: int, available: int, *, version: int | None = None, wait: bool = True) -> None:
        """Publish a StockChanged (next version unless given); wait until the cart applied it."""
        if version is None:
            version = self._versions.get(product_id, 0) + 1
        self._versions[product_id] = max(version, self._versions.get(product_id, 0))
        status = "out" if available == 0 else "in_stock"
        event = StockChanged(product_id=product_id, available=available, status=status, version=version)
        await self.publish(event, product_id)
        if wait:
            await eventually(lambda: self.stock_version_at_least(product_id, version))

    async def stock_version_at_least(self, product_id: int, version: int) -> bool:
        async with self._engine.connect() as conn:
            stored = await conn.scalar(sa.select(stock_levels.c.version).where(stock_levels.c.product_id == product_id))
        return stored is not None and stored >= version

    async def order_status(self, order_id: int, user_id: str, cart_id: str | None, status: str) -> None:
        event = OrderStatusChanged(
            order_id=order_id, user_id=user_id, cart_id=cart_id, status=status, version=2, at=datetime.now(UTC)
        )
        await self.publish(event, order_id)


class PushTap:
    """A private queue on the push fanout: every publication the relay puts on the push log."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def on(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["channel"] == channel]

    async def next_on(self, channel: str, offset: int) -> dict[str, Any]:
        """The publication at ``offset`` of ``channel``, once it arrives."""

        async def found() -> dict[str, Any] | None:
            return next((m for m in self.on(channel) if m["offset"] == offset), None)

        result: dict[str, Any] = await eventually(found)
        return result


@asynccontextmanager
async def push_tap(amqp_url: str) -> AsyncIterator[PushTap]:
    tap = PushTap()
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(PUSH_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange)

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            tap.messages.extend(documents(orjson.loads(message.body)))  # one, or a relay batch
            await message.ack()

        await queue.consume(collect)
        yield tap
    finally:
        await connection.close()


@asynccontextmanager
async def catalog_double(amqp_url: str, engine: AsyncEngine) -> AsyncIterator[CatalogDouble]:
    bus = RabbitMQEventBus(amqp_url, service="cart-tests")
    try:
        yield CatalogDouble(bus, engine)
    finally:
        await bus.stop()
