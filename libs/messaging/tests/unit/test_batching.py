"""Batcher: concurrent calls share batches, and each call still gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from flashline_messaging.batching import Batcher
from flashline_messaging.errors import TransientError


class Doubler:
    """Doubles numbers a batch at a time; a batch holding ``poison`` fails whole."""

    def __init__(self, *, poison: int | None = None, error: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.poison = poison
        self.error = error or ValueError("poison")
        self.running = self.most_at_once = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)  # a round trip: calls made meanwhile wait for the next batch
        self.running -= 1
        if self.poison in items:
            raise self.error
        return [2 * item for item in items]


async def test_calls_waiting_together_share_a_batch_and_each_gets_its_result() -> None:
    run = Doubler()
    batcher = Batcher(run, name="t", max_batch=4)
    assert await batcher(0) == 0  # alone: nothing waits for a batch to fill
    assert await asyncio.gather(*(batcher(n) for n in range(1, 11))) == [2 * n for n in range(1, 11)]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


async def test_a_second_worker_takes_what_arrives_while_the_first_batch_runs() -> None:
    run = Doubler()
    batcher = Batcher(run, name="t", workers=2)
    first = asyncio.gather(batcher(0), batcher(1))
    await asyncio.sleep(0.001)  # the first batch is under way
    second = asyncio.gather(batcher(2), batcher(3))
    assert await asyncio.gather(first, second) == [[0, 2], [4, 6]]
    assert run.batches == [[0, 1], [2, 3]]
    assert run.most_at_once == 2


async def test_one_worker_runs_one_batch_at_a_time() -> None:
    run = Doubler()
    batcher = Batcher(run, name="t")
    first = asyncio.gather(batcher(0), batcher(1))
    await asyncio.sleep(0.001)
    assert await asyncio.gather(first, asyncio.gather(batcher(2), batcher(3))) == [[0, 2], [4, 6]]
    assert run.batches == [[0, 1], [2, 3]] and run.most_at_once == 1


async def test_a_failed_batch_is_run_one_by_one_so_a_bad_item_fails_alone() -> None:
    run = Doubler(poison=3)
    batcher = Batcher(run, name="t")
    results = await asyncio.gather(*(batcher(n) for n in range(5)), return_exceptions=True)
    assert results[:3] == [0, 2, 4] and isinstance(results[3], ValueError) and results[4] == 8
    assert run.batches == [[0, 1, 2, 3, 4], [0], [1], [2], [3], [4]]


async def test_a_transient_failure_fails_the_whole_batch_at_once() -> None:
    run = Doubler(poison=2, error=TransientError("database restarting"))
    batcher = Batcher(run, name="t")
    results = await asyncio.gather(*(batcher(n) for n in range(4)), return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in results)
    assert run.batches == [[0, 1, 2, 3]], "not retried here: the callers decide"


async def test_a_cancelled_caller_does_not_cancel_its_batch() -> None:
    run = Doubler()
    batcher = Batcher(run, name="t")
    first = asyncio.ensure_future(batcher(1))
    second = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0.001)
    first.cancel()
    assert await second == 4
    with pytest.raises(asyncio.CancelledError):
        await first
    assert run.batches == [[1, 2]]


async def test_a_wrong_number_of_results_fails_the_batch() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:1]

    batcher = Batcher(short, name="t")
    results = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
