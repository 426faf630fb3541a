"""The relay's idle wait: a wake-up ends it, and a cancellation always stops it."""

from __future__ import annotations

import asyncio

import pytest

from flashline_messaging.relay import OutboxRelay


def relay() -> OutboxRelay:
    return OutboxRelay(None, None, service="t", database_url="postgresql+asyncpg://u@h/db")  # type: ignore[arg-type]


async def test_a_wake_up_ends_the_wait_and_the_time_limit_ends_it_too() -> None:
    woken = relay()
    waiting = asyncio.create_task(woken._wait_for_wakeup(30))
    await asyncio.sleep(0)
    woken.wake()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(relay()._wait_for_wakeup(0.01), 1)  # nobody wakes it: returns at its limit


async def test_a_cancel_landing_as_the_wake_up_does_still_cancels() -> None:
    """Python 3.11's ``wait_for`` returned normally here (gh-86296): shutdown then never stopped the relay."""
    woken = relay()
    waiting = asyncio.create_task(woken._wait_for_wakeup(30))
    await asyncio.sleep(0)
    woken.wake()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
