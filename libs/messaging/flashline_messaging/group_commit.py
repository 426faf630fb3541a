"""Group commit for idempotent consumers: deliveries that arrive together share one transaction.

During a flash sale hundreds of ``OrderPlaced`` a second reach the catalog, all for one product.
One transaction each means one turn on that product's row lock each, with a commit and a dozen
round trips per order; the service, not Postgres, becomes the bottleneck. Here every delivery
waiting when a transaction starts joins it: one inbox claim for all of them, one call of the
batch handler, one commit. Under light load a batch is one delivery, so nothing waits for a
batch to fill.

Each delivery still succeeds or fails on its own, as the dispatcher expects: a batch whose
transaction fails for a reason that is not transient is retried one delivery per transaction,
so a poison message fails (and is retried or dead-lettered) alone, and the rest commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_messaging.errors import is_transient
from flashline_messaging.inbox import claim_many

log = logging.getLogger("flashline.consumer")

E = TypeVar("E", bound=IntegrationEvent)
Delivery = tuple[E, EventEnvelope]
BatchHandler = Callable[[Sequence[Delivery[E]], AsyncSession], Awaitable[None]]


class GroupCommit(Generic[E]):
    """A bus handler (``await group(event, envelope)``) that runs ``handler`` on batches.

    ``handler`` gets the deliveries that were not processed before (duplicates are claimed and
    dropped in the same statement), in arrival order, and the batch's session; the transaction
    commits when it returns. A delivery's call returns once its batch has committed.
    Up to ``workers`` batches are open at once, each of at most ``max_batch`` deliveries: one
    worker for deliveries that contend for the same rows anyway (a hot product), several where
    they do not and a batch's round trips are the wait. ``slots`` is the service's shared bound
    on open transactions (see ``inbox.idempotent``).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumer: str,
        handler: BatchHandler[E],
        *,
        max_batch: int = 100,
        workers: int = 1,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self._sessions = sessions
        self._consumer = consumer
        self._handler = handler
        self._max_batch = max_batch
        self._slots: AbstractAsyncContextManager[object] = slots if slots is not None else contextlib.nullcontext()
        self._workers = workers
        self._waiting: list[tuple[E, EventEnvelope, asyncio.Future[None]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, event: E, envelope: EventEnvelope) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event, envelope, done))
        if len(self._running) < self._workers:
            self._running.add(asyncio.create_task(self._drain(), name=f"group-commit:{self._consumer}"))
        await asyncio.shield(done)  # a cancelled delivery is not acked; its batch still completes

    async def _drain(self) -> None:
        batch: list[tuple[E, EventEnvelope, asyncio.Future[None]]] = []
        worker = asyncio.current_task()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                try:
                    await self._commit([(event, envelope) for event, envelope, _ in batch])
                except Exception as exc:  # noqa: BLE001 - settled per delivery below
                    if is_transient(exc) or len(batch) == 1:
                        _settle(batch, exc)
                    else:
                        log.warning("%s: a batch of %d failed (%s); one by one", self._consumer, len(batch), exc)
                        await self._one_by_one(batch)
                    continue
                _settle(batch, None)
        except asyncio.CancelledError:  # shutdown: nothing of these is acked, all are redelivered
            for _, _, done in batch + self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            # Synchronously after the last look at the queue (not in a done callback, which runs a
            # loop turn later): a delivery queued from now on starts a worker of its own.
            self._running.discard(worker)  # type: ignore[arg-type]

    async def _one_by_one(self, batch: list[tuple[E, EventEnvelope, asyncio.Future[None]]]) -> None:
        for event, envelope, done in batch:
            try:
                await self._commit([(event, envelope)])
            except Exception as exc:  # noqa: BLE001 - the dispatcher classifies it
                _settle([(event, envelope, done)], exc)
            else:
                _settle([(event, envelope, done)], None)

    async def _commit(self, deliveries: list[Delivery[E]]) -> None:
        async with self._slots, self._sessions() as session, session.begin():
            new = await claim_many(session, self._consumer, [envelope for _, envelope in deliveries])
            fresh = []
            for event, envelope in deliveries:
                if str(envelope.event_id) in new:
                    new.discard(str(envelope.event_id))  # two copies in one batch: the first only
                    fresh.append((event, envelope))
            if fresh:
                await self._handler(fresh, session)


def _settle(batch: Sequence[tuple[object, object, asyncio.Future[None]]], exc: BaseException | None) -> None:
    for _, _, done in batch:
        if done.done():
            continue
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)
