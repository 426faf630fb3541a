"""Consumers through real RabbitMQ and Postgres: the same event twice has one effect."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import StockChanged
from flashline_messaging.errors import TransientError
from flashline_messaging.inbox import idempotent
from flashline_messaging.rabbitmq import RabbitMQEventBus

from ..conftest import effects, eventually


async def count_effects(engine: AsyncEngine, event_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(effects).where(effects.c.event_id == event_id)
        return int((await conn.execute(query)).scalar_one())


async def test_duplicate_delivery_has_one_effect_and_failed_attempts_leave_none(
    engine: AsyncEngine, amqp_url: str
) -> None:
    sessions = async_sessionmaker(engine)
    attempts: dict[uuid.UUID, int] = {}

    async def record(event: StockChanged, envelope: EventEnvelope, session: AsyncSession) -> None:
        await session.execute(sa.insert(effects).values(event_id=envelope.event_id))
        attempts[envelope.event_id] = attempts.get(envelope.event_id, 0) + 1
        if event.version == 2 and attempts[envelope.event_id] == 1:
            raise TransientError("connection reset after the write")  # the write must roll back

    bus = RabbitMQEventBus(amqp_url, service=f"inbox-{uuid.uuid4().hex[:8]}", base_backoff=0.01)
    bus.subscribe(StockChanged, idempotent(sessions, "inbox-test", record))
    await bus.start()
    try:
        once = EventEnvelope.wrap(
            StockChanged(product_id=1, available=1, status="low", version=1), producer="t", aggregate_id=1
        )
        flaky = EventEnvelope.wrap(
            StockChanged(product_id=1, available=1, status="low", version=2), producer="t", aggregate_id=1
        )
        for envelope in (once, once, flaky, once):
            await bus.publish(envelope)
        await eventually(lambda: attempts.get(flaky.event_id) == 2)
        await eventually(lambda: _equals(engine, flaky.event_id, 1))
        assert await count_effects(engine, once.event_id) == 1
        assert attempts[once.event_id] == 1  # the duplicates never reached the handler
    finally:
        await bus.stop(grace=1)


async def _equals(engine: AsyncEngine, event_id: uuid.UUID, expected: int) -> bool:
    return await count_effects(engine, event_id) == expected


async def test_old_processed_ids_are_purged_and_recent_ones_kept(engine: AsyncEngine) -> None:
    from datetime import UTC, datetime, timedelta

    from flashline_messaging.inbox import purge_processed
    from flashline_messaging.schema import processed_events

    consumer = f"purge-{uuid.uuid4().hex[:6]}"
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(processed_events),
            [
                {"consumer": consumer, "event_id": old, "processed_at": datetime.now(UTC) - timedelta(hours=30)},
                {"consumer": consumer, "event_id": recent, "processed_at": datetime.now(UTC)},
            ],
        )
    assert await purge_processed(async_sessionmaker(engine), older_than=timedelta(hours=24), batch=1) >= 1
    async with engine.connect() as conn:
        left = (
            (await conn.execute(sa.select(processed_events.c.event_id).where(processed_events.c.consumer == consumer)))
            .scalars()
            .all()
        )
    assert left == [recent]
