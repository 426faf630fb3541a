"""Concurrent calls that share batches: the mechanics of a group commit, for any kind of item.

Every call waiting when a batch starts joins it, so under load many calls share one transaction
(one commit, one statement per step) and under light load a batch is one call: nothing waits for
a batch to fill. Each call still succeeds or fails on its own: a batch that fails for a reason
that is not transient runs again one item per batch, so a bad item fails alone and the rest go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from flashline_messaging.errors import is_transient

log = logging.getLogger("flashline.batching")

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """``await batcher(item)`` returns ``item``'s result of ``run(batch)``, which takes a batch of
    items and returns one result per item, in order (or raises for the whole batch).

    Up to ``workers`` batches run at once, each of at most ``max_batch`` items: one worker where
    batches contend for the same rows anyway, several where they do not and a batch's round trips
    are the wait.
    """

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, name: str, max_batch: int = 100, workers: int = 1
    ) -> None:
        self._run = run
        self._name = name
        self._max_batch = max_batch
        self._workers = workers
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if len(self._running) < self._workers:
            self._running.add(asyncio.create_task(self._drain(), name=f"batches:{self._name}"))
        return await asyncio.shield(done)  # a caller cancelled does not cancel its batch

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        worker = asyncio.current_task()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - settled per item below
                    if is_transient(exc) or len(batch) == 1:
                        _fail(batch, exc)
                    else:
                        log.warning("%s: a batch of %d failed (%s); one by one", self._name, len(batch), exc)
                        await self._one_by_one(batch)
                    continue
                _succeed(batch, results)
        except asyncio.CancelledError:  # shutdown: every waiting caller is cancelled too
            for _, done in batch + self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            # Synchronously after the last look at the queue (not in a done callback, which runs a
            # loop turn later): an item queued from now on starts a worker of its own.
            self._running.discard(worker)  # type: ignore[arg-type]

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, done in batch:
            try:
                results = await self._run([item])
            except Exception as exc:  # noqa: BLE001 - the caller's to handle
                _fail([(item, done)], exc)
            else:
                _succeed([(item, done)], results)


def _succeed(batch: Sequence[tuple[object, asyncio.Future[R]]], results: Sequence[R]) -> None:
    if len(results) != len(batch):
        _fail(batch, RuntimeError(f"a batch of {len(batch)} returned {len(results)} results"))
        return
    for (_, done), result in zip(batch, results, strict=True):
        if not done.done():
            done.set_result(result)


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
