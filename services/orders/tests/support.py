"""Helpers for the database and broker tests: settings, polling, the catalog's side of the bus, a tap."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_contracts.events import ProductChanged
from flashline_contracts.topology import EVENTS_EXCHANGE
from flashline_messaging.schema import processed_events
from flashline_service.database import Database
from flashline_service.testing import Tap, eventually, user_token  # noqa: F401 - shared test helpers
from orders.adapters.tables import catalog_products
from orders.service_layer.integration import OutboxWriter
from orders.service_layer.unit_of_work import SqlUnitOfWork
from orders.settings import OrdersSettings


def unit_of_work(db: Database) -> SqlUnitOfWork:
    """A unit of work with its own transactions on ``db``, stamping changes with the wall clock."""
    return SqlUnitOfWork(OutboxWriter("orders"), lambda: datetime.now(UTC), sessions=db.sessions)


def settings_for(dev_keys: Path, database_url: str, amqp_url: str, **overrides: Any) -> OrdersSettings:
    return OrdersSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        trusted_keys_file=dev_keys / "trusted.json",
        signing_key_file=dev_keys / "orders.pem",
        signing_key_id="dev-orders-1",
        **overrides,
    )


def auth(dev_keys: Path, user: str, role: str = "customer", tenant: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(dev_keys, user, role, tenant=tenant)}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def product_id() -> int:
    return uuid.uuid4().int % 10**12


class CatalogBus:
    """Publishes events as the catalog's relay would (confirmed), returning their envelopes."""

    def __init__(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        self._exchange = exchange

    @classmethod
    @asynccontextmanager
    async def open(cls, amqp_url: str) -> AsyncIterator[CatalogBus]:
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            yield cls(exchange)
        finally:
            await connection.close()

    async def publish(self, event: IntegrationEvent, aggregate_id: int) -> EventEnvelope:
        envelope = EventEnvelope.wrap(event, producer="catalog", aggregate_id=aggregate_id)
        await self.redeliver(envelope)
        return envelope

    async def redeliver(self, envelope: EventEnvelope) -> None:
        body = orjson.dumps(envelope.model_dump(mode="json"))
        await self._exchange.publish(aio_pika.Message(body, message_id=str(envelope.event_id)), envelope.topic)

    async def product(
        self, engine: AsyncEngine, *, price_cents: int = 1500, currency: str = "EUR", name: str = "Sneaker"
    ) -> int:
        """A product the orders read model knows (published, then waited for)."""
        new_id = product_id()
        event = ProductChanged(
            product_id=new_id, sku=unique("SKU"), name=name, price_cents=price_cents, currency=currency
        )
        await self.publish(event, new_id)

        async def known() -> bool:
            async with engine.connect() as conn:
                query = sa.select(sa.func.count()).where(catalog_products.c.product_id == new_id)
                return bool((await conn.execute(query)).scalar_one())

        await eventually(known)
        return new_id


async def processed(engine: AsyncEngine, *envelopes: EventEnvelope) -> bool:
    ids = [e.event_id for e in envelopes]
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(processed_events.c.event_id.in_(ids))
        return int((await conn.execute(query)).scalar_one()) == len(ids)
