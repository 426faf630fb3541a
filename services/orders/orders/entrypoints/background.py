"""The expiry sweeper: confirmed orders not paid within the window expire, releasing their stock.

Safe with any number of replicas: each order is claimed with ``FOR UPDATE SKIP LOCKED`` and
expired in the transaction that claims it, so one replica wins each. The due time is stored on
the order, so a restarted (or long stopped) service catches up on its first tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flashline_service.background import Stop, start_task, tick_forever
from orders.domain import commands
from orders.service_layer import handlers
from orders.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("orders.sweeper")


class ExpirySweeper:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], *, interval: float = 1.0, batch_size: int = 100) -> None:
        self._unit_of_work = unit_of_work
        self._interval = interval
        self._batch_size = batch_size

    async def tick(self) -> float:
        """Expire what is due; returns how long to sleep before the next tick."""
        expired = await handlers.expire_overdue(commands.ExpireOverdueOrders(self._batch_size), self._unit_of_work())
        if expired:
            log.info("expired unpaid orders %s", expired)
        return 0.0 if len(expired) == self._batch_size else self._interval

    async def run(self) -> None:
        """Tick until cancelled; database outages are logged and retried."""
        await tick_forever(self.tick, what="expiry sweep", retry_after=self._interval)


def start_in_background(sweeper: ExpirySweeper) -> Stop:
    """Run ``sweeper`` as a task; returns the coroutine function that stops it."""
    return start_task(sweeper.run(), name="expiry-sweeper")
