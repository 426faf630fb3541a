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
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_messaging.batching import Batcher
from flashline_messaging.inbox import claim_many

E = TypeVar("E", bound=IntegrationEvent)
Delivery = tuple[E, EventEnvelope]
BatchHandler = Callable[[Sequence[Delivery[E]], AsyncSession], Awaitable[None]]


class GroupCommit(Generic[E]):
    """A bus handler (``await group(event, envelope)``) that runs ``handler`` on batches (``Batcher``).

    ``handler`` gets the deliveries that were not processed before (duplicates are claimed and
    dropped in the same statement), in arrival order, and the batch's session; the transaction
    commits when it returns. A delivery's call returns once its batch has committed; a cancelled
    delivery is not acked, and its batch still completes. ``slots`` is the service's shared bound
    on open transactions (see ``inbox.idempotent``); ``workers``: see ``Batcher``.
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
        self._slots: AbstractAsyncContextManager[object] = slots if slots is not None else contextlib.nullcontext()
        self._batches: Batcher[Delivery[E], None] = Batcher(
            self._commit, name=consumer, max_batch=max_batch, workers=workers
        )

    async def __call__(self, event: E, envelope: EventEnvelope) -> None:
        await self._batches((event, envelope))

    async def _commit(self, deliveries: list[Delivery[E]]) -> list[None]:
        async with self._slots, self._sessions() as session, session.begin():
            new = await claim_many(session, self._consumer, [envelope for _, envelope in deliveries])
            fresh = []
            for event, envelope in deliveries:
                if str(envelope.event_id) in new:
                    new.discard(str(envelope.event_id))  # two copies in one batch: the first only
                    fresh.append((event, envelope))
            if fresh:
                await self._handler(fresh, session)
        return [None] * len(deliveries)
