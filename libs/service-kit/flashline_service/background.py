"""Periodic jobs (sweepers, schedulers): tick until cancelled, outlive database outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("flashline.background")

Stop = Callable[[], Awaitable[None]]


async def tick_forever(tick: Callable[[], Awaitable[float]], *, what: str, retry_after: float) -> None:
    """Call ``tick`` (which returns how long to sleep) until cancelled; a failing tick is logged
    and retried after ``retry_after`` seconds, so an outage pauses the job instead of ending it."""
    while True:
        try:
            delay = await tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the job must outlive outages
            log.warning("%s failed: %s", what, exc)
            delay = retry_after
        await asyncio.sleep(delay)


def start_task(job: Coroutine[Any, Any, None], *, name: str) -> Stop:
    """Run ``job`` as a task; returns the coroutine function that cancels and awaits it."""
    task = asyncio.create_task(job, name=name)

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return stop
