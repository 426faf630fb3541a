"""Fixtures for the messaging tests: a real database with the library's tables, bus harnesses."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.topology import EVENTS_EXCHANGE, REASON_HEADER, dead_letter_queue
from flashline_messaging.memory import InMemoryEventBus
from flashline_messaging.rabbitmq import RabbitMQEventBus
from flashline_messaging.schema import metadata

effects = sa.Table(
    "test_effects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def messaging_db_url(throwaway_databases) -> str:
    return throwaway_databases.create("messaging")


@pytest.fixture
async def engine(messaging_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(messaging_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@dataclass
class BusHarness:
    """What the contract suite needs from an adapter, real or fake."""

    bus: Any
    inject_raw: Callable[[bytes, str], Awaitable[None]]
    dead_letters: Callable[[], Awaitable[list[tuple[bytes, str]]]]
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def publish(self, envelope: EventEnvelope) -> None:
        await self.bus.publish(envelope)


def _memory_harness() -> BusHarness:
    bus = InMemoryEventBus(max_attempts=3)

    async def dead() -> list[tuple[bytes, str]]:
        return [(d.body, d.reason) for d in bus.dead_letters]

    return BusHarness(bus=bus, inject_raw=bus.deliver_raw, dead_letters=dead)


async def _rabbit_harness(amqp_url: str) -> BusHarness:
    service = f"contract-{uuid.uuid4().hex[:8]}"
    bus = RabbitMQEventBus(amqp_url, service=service, max_attempts=3, base_backoff=0.01)
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    collected: list[tuple[bytes, str]] = []

    async def inject(body: bytes, routing_key: str) -> None:
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        await exchange.publish(aio_pika.Message(body=body), routing_key=routing_key)

    async def dead() -> list[tuple[bytes, str]]:
        queue = await channel.get_queue(dead_letter_queue(service))
        while (msg := await queue.get(fail=False)) is not None:
            await msg.ack()
            collected.append((msg.body, str(msg.headers.get(REASON_HEADER))))
        return list(collected)

    async def close() -> None:
        await bus.stop(grace=1)
        await channel.queue_delete(f"{service}.events")
        await channel.queue_delete(dead_letter_queue(service))
        await connection.close()

    return BusHarness(bus=bus, inject_raw=inject, dead_letters=dead, cleanup=[close])


@pytest.fixture(params=["memory", "rabbitmq"])
async def harness(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[BusHarness]:
    h = _memory_harness() if request.param == "memory" else await _rabbit_harness(amqp_url)
    yield h
    for close in h.cleanup:
        await close()


def raw(envelope: EventEnvelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))
