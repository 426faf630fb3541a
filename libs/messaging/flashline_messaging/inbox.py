"""Idempotent consumption: a processed-event row, written in the handler's own transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_messaging.schema import processed_events

E = TypeVar("E", bound=IntegrationEvent)
TransactionalHandler = Callable[[E, EventEnvelope, AsyncSession], Awaitable[None]]


async def claim_many(session: AsyncSession, consumer: str, envelopes: Sequence[EventEnvelope]) -> set[str]:
    """Record the events as processed by ``consumer`` (one statement); the ids that were new.

    The rows go in in id order: a batch waits on an id another open transaction claimed (a
    redelivery racing its first delivery), so two batches holding the same ids in opposite
    arrival orders would otherwise wait on each other.
    """
    rows = [{"consumer": consumer, "event_id": event_id} for event_id in sorted(e.event_id for e in envelopes)]
    result = await session.execute(
        pg_insert(processed_events).values(rows).on_conflict_do_nothing().returning(processed_events.c.event_id)
    )
    return {str(event_id) for event_id in result.scalars()}


async def claim(session: AsyncSession, consumer: str, envelope: EventEnvelope) -> bool:
    """Record the event as processed by ``consumer``; False if it already was (a duplicate)."""
    return bool(await claim_many(session, consumer, [envelope]))


def idempotent(
    sessions: async_sessionmaker[AsyncSession],
    consumer: str,
    handler: TransactionalHandler[E],
    *,
    slots: asyncio.Semaphore | None = None,
) -> Callable[[E, EventEnvelope], Awaitable[None]]:
    """Run ``handler`` in a transaction that also claims the event id; duplicates do nothing.

    The claim and the handler's writes commit together or not at all, so a crash between them
    cannot lose the effect or apply it twice.

    ``slots``, shared by a service's handlers and sized to its connection pool, bounds how many
    transactions they hold at once: more deliveries in flight (the prefetch) than connections
    would otherwise queue on the pool's checkout and fail once its timeout passes.
    """

    limit: AbstractAsyncContextManager[object] = slots if slots is not None else contextlib.nullcontext()

    async def run(event: E, envelope: EventEnvelope) -> None:
        async with limit, sessions() as session, session.begin():
            if await claim(session, consumer, envelope):
                await handler(event, envelope, session)

    return run


async def purge_processed(
    sessions: async_sessionmaker[AsyncSession], *, older_than: timedelta, batch: int = 5000
) -> int:
    """Forget processed-event ids older than ``older_than``, in batches; returns how many went.

    Duplicates arrive close together (a relay re-sending after a crash, a redelivery after a
    consumer restart), so a window of hours catches them while the table stays small even when a
    drop pushes hundreds of events a second.
    """
    cutoff = datetime.now(UTC) - older_than
    removed = 0
    while True:
        async with sessions() as session, session.begin():
            doomed = (
                sa.select(processed_events.c.consumer, processed_events.c.event_id)
                .where(processed_events.c.processed_at < cutoff)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
            deleted = await session.execute(
                sa.delete(processed_events)
                .where(sa.tuple_(processed_events.c.consumer, processed_events.c.event_id).in_(doomed))
                .returning(processed_events.c.event_id)
            )
            count = len(deleted.all())
        removed += count
        if count < batch:
            return removed
