"""The drop scheduler: at a product's sale start, publish its on-sale state exactly once.

Safe with any number of replicas: each tick claims due, unannounced products with
``FOR UPDATE SKIP LOCKED`` and marks them announced in the transaction that publishes, so one
replica wins each product. Announcing is driven by the table, so a restart catches up at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from catalog.domain import commands
from catalog.service_layer import handlers, views
from catalog.service_layer.unit_of_work import Clock, UnitOfWork
from flashline_service.background import Stop, start_task, tick_forever

log = logging.getLogger("catalog.drops")

MIN_SLEEP = 0.02  # a due product another transaction holds is retried this soon


class DropScheduler:
    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], clock: Clock, *, max_sleep: float = 1.0, batch_size: int = 100
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._max_sleep = max_sleep
        self._batch_size = batch_size

    async def tick(self) -> float:
        """Announce what is due; returns how long to sleep before the next tick."""
        announced = await handlers.announce_due_sales(commands.AnnounceDueSales(self._batch_size), self._unit_of_work())
        if announced:
            log.info("announced sale start of products %s", [level.product_id for level in announced])
        if len(announced) == self._batch_size:
            return 0.0
        upcoming = await views.next_sale_start(self._unit_of_work())
        if upcoming is None:
            return self._max_sleep
        wait = (upcoming - self._clock()).total_seconds()
        return min(self._max_sleep, max(MIN_SLEEP, wait))

    async def run(self) -> None:
        """Tick until cancelled; database outages are logged and retried."""
        await tick_forever(self.tick, what="drop scheduler tick", retry_after=self._max_sleep)


def start_in_background(scheduler: DropScheduler) -> Stop:
    """Run ``scheduler`` as a task; returns the coroutine function that stops it."""
    return start_task(scheduler.run(), name="drop-scheduler")
