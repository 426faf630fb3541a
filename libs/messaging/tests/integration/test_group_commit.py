"""Group commit on real Postgres: deliveries that wait together share a transaction; each still
succeeds or fails alone, and duplicates have no effect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import StockChanged
from flashline_messaging.errors import PermanentError, TransientError
from flashline_messaging.group_commit import GroupCommit
from flashline_messaging.inbox import claim_many

from ..conftest import effects

Batch = Sequence[tuple[StockChanged, EventEnvelope]]


def envelope(version: int) -> EventEnvelope:
    event = StockChanged(product_id=1, available=version, status="in_stock", version=version)
    return EventEnvelope.wrap(event, producer="t", aggregate_id=version)


async def effect_ids(engine: AsyncEngine, envelopes: Sequence[EventEnvelope]) -> list[uuid.UUID]:
    async with engine.connect() as conn:
        query = sa.select(effects.c.event_id).where(effects.c.event_id.in_([e.event_id for e in envelopes]))
        return list((await conn.execute(query)).scalars())


async def deliver(group: GroupCommit[StockChanged], envelopes: Sequence[EventEnvelope]) -> list[BaseException | None]:
    """Deliver concurrently, as the bus does with its prefetch; each delivery's own outcome."""
    return await asyncio.gather(*(group(e.open(StockChanged), e) for e in envelopes), return_exceptions=True)  # type: ignore[return-value]


async def test_deliveries_waiting_together_share_one_transaction_and_duplicates_do_nothing(
    engine: AsyncEngine,
) -> None:
    batches: list[int] = []

    async def record(batch: Batch, session: AsyncSession) -> None:
        batches.append(len(batch))
        await session.execute(sa.insert(effects), [{"event_id": e.event_id} for _, e in batch])

    group = GroupCommit(async_sessionmaker(engine), f"gc-{uuid.uuid4().hex[:6]}", record, max_batch=8)
    first = [envelope(v) for v in range(1, 13)]
    assert await deliver(group, first + first[:2]) == [None] * 14
    assert sorted(await effect_ids(engine, first)) == sorted(e.event_id for e in first)
    assert batches == [8, 4]  # up to max_batch at a time; the copies were claimed and dropped
    assert await deliver(group, first[3:5]) == [None, None]  # processed before: no second effect
    assert batches == [8, 4]
    assert await deliver(group, [envelope(13)]) == [None]  # alone: nothing waits for a batch to fill
    assert batches == [8, 4, 1]


async def test_a_poison_delivery_fails_alone_and_the_rest_commit(engine: AsyncEngine) -> None:
    poison = envelope(666)

    async def record(batch: Batch, session: AsyncSession) -> None:
        for _, e in batch:
            if e.event_id == poison.event_id:
                raise PermanentError("cannot be handled")
            await session.execute(sa.insert(effects).values(event_id=e.event_id))

    group = GroupCommit(async_sessionmaker(engine), f"gc-{uuid.uuid4().hex[:6]}", record)
    good = [envelope(v) for v in range(1, 6)]
    outcomes = await deliver(group, [*good[:2], poison, *good[2:]])
    assert isinstance(outcomes[2], PermanentError)
    assert outcomes[:2] + outcomes[3:] == [None] * 5
    assert sorted(await effect_ids(engine, [*good, poison])) == sorted(e.event_id for e in good)
    # The poison's claim rolled back with it: once it can be handled, it is.
    healed = GroupCommit(async_sessionmaker(engine), group._consumer, lambda b, s: _insert(b, s))
    assert await deliver(healed, [poison]) == [None]
    assert await effect_ids(engine, [poison]) == [poison.event_id]


async def test_a_transient_failure_fails_the_whole_batch_for_the_dispatcher_to_retry(engine: AsyncEngine) -> None:
    calls: list[int] = []

    async def flaky(batch: Batch, session: AsyncSession) -> None:
        calls.append(len(batch))
        await _insert(batch, session)
        raise TransientError("connection reset after the writes")

    group = GroupCommit(async_sessionmaker(engine), f"gc-{uuid.uuid4().hex[:6]}", flaky)
    batch = [envelope(v) for v in range(1, 4)]
    outcomes = await deliver(group, batch)
    assert all(isinstance(outcome, TransientError) for outcome in outcomes)
    assert sum(calls) == 3  # not retried one by one: the dispatcher retries with backoff
    assert await effect_ids(engine, batch) == []  # nothing of a failed batch stays


@pytest.mark.parametrize("waiting", [1, 5])
async def test_cancelled_work_is_not_left_pending(engine: AsyncEngine, waiting: int) -> None:
    started = asyncio.Event()

    async def slow(batch: Batch, session: AsyncSession) -> None:
        started.set()
        await asyncio.sleep(30)

    group = GroupCommit(async_sessionmaker(engine), f"gc-{uuid.uuid4().hex[:6]}", slow)
    deliveries = asyncio.gather(*(group(e.open(StockChanged), e) for e in [envelope(v) for v in range(1, waiting + 1)]))
    await asyncio.wait_for(started.wait(), 5)
    for worker in list(group._batches._running):  # shutdown cancels the workers
        worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(deliveries, 5)


async def _insert(batch: Batch, session: AsyncSession) -> None:
    await session.execute(sa.insert(effects), [{"event_id": e.event_id} for _, e in batch])


async def test_claims_take_event_ids_in_one_order_so_crossing_redeliveries_queue_instead_of_deadlocking(
    engine: AsyncEngine,
) -> None:
    first, second = sorted((envelope(1), envelope(2)), key=lambda e: e.event_id)
    consumer = f"gc-{uuid.uuid4().hex[:6]}"
    sessions = async_sessionmaker(engine)
    holding, go_on = asyncio.Event(), asyncio.Event()

    async def claims_first_then_second() -> set[str]:
        async with sessions() as session, session.begin():
            new = await claim_many(session, consumer, [first])
            holding.set()
            await go_on.wait()
            return new | await claim_many(session, consumer, [second])

    async def claims_both_arriving_the_other_way() -> set[str]:
        async with sessions() as session, session.begin():
            return await claim_many(session, consumer, [second, first])

    early = asyncio.create_task(claims_first_then_second())
    await holding.wait()
    late = asyncio.create_task(claims_both_arriving_the_other_way())
    await asyncio.sleep(0.3)
    # Claiming ``second`` first, the late batch would hold it while waiting for ``first``: a cycle.
    assert not late.done(), "the late batch must wait for the id the early one claimed"
    go_on.set()
    assert await early == {str(first.event_id), str(second.event_id)}
    assert await late == set()  # both were claimed by the early batch: duplicates
