"""The guest-cart sweeper: guest carts nothing has changed for the TTL are deleted.

Safe with any number of replicas: each batch is claimed with ``FOR UPDATE SKIP LOCKED`` and
deleted in the transaction that claims it. A restarted (or long stopped) service catches up on
its first ticks, a batch per transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cart.domain import commands
from cart.service_layer import handlers
from cart.service_layer.unit_of_work import UnitOfWork
from flashline_service.background import Stop, start_task, tick_forever

log = logging.getLogger("cart.sweeper")


class IdleGuestCartSweeper:
    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], *, ttl: timedelta, interval: float, batch_size: int
    ) -> None:
        self._unit_of_work = unit_of_work
        self._ttl = ttl
        self._interval = interval
        self._batch_size = batch_size

    async def tick(self) -> float:
        """Delete a batch of idle guest carts; returns how long to sleep before the next tick."""
        command = commands.ForgetIdleGuestCarts(datetime.now(UTC) - self._ttl, self._batch_size)
        deleted = await handlers.forget_idle_guest_carts(command, self._unit_of_work())
        if deleted:
            log.info("deleted idle guest carts", extra={"carts": len(deleted)})
        return 0.0 if len(deleted) == self._batch_size else self._interval

    async def run(self) -> None:
        """Tick until cancelled; database outages are logged and retried."""
        await tick_forever(self.tick, what="guest cart sweep", retry_after=self._interval)


def start_in_background(sweeper: IdleGuestCartSweeper) -> Stop:
    """Run ``sweeper`` as a task; returns the coroutine function that stops it."""
    return start_task(sweeper.run(), name="guest-cart-sweeper")
