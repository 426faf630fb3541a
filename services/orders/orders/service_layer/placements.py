"""Placing orders under load: concurrent requests share one transaction (a group commit).

A flash sale is many buyers placing at once. One transaction per request is six round trips and
a commit each, on the service's and on Postgres's CPU; here every request waiting when a
transaction starts joins it (``handlers.place_orders``), so a batch costs about what one order
did. A request alone still runs at once: nothing waits for a batch to fill.
"""

from __future__ import annotations

from collections.abc import Callable

from flashline_messaging.batching import Batcher
from orders.domain import commands, pricing
from orders.service_layer import handlers
from orders.service_layer.unit_of_work import UnitOfWork

MAX_BATCH = 64  # requests per transaction
WORKERS = 2  # transactions at once: one batch's round trips overlap the next one's work


class Placements:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._unit_of_work = unit_of_work
        self._batches: Batcher[commands.PlaceOrder, handlers.Placed | None] = Batcher(
            self._place_batch, name="placements", max_batch=MAX_BATCH, workers=WORKERS
        )

    async def place(self, cmd: commands.PlaceOrder) -> handlers.Placed:
        """As ``handlers.place_order``: the same answers and errors, for one request."""
        pricing.check_items(cmd.items, cmd.cart_id)  # a request no catalog could make valid never joins a batch
        placed = await self._batches(cmd)
        if placed is not None:
            return placed
        return await handlers.place_order(cmd, self._unit_of_work())

    async def _place_batch(self, cmds: list[commands.PlaceOrder]) -> list[handlers.Placed | None]:
        return await handlers.place_orders(cmds, self._unit_of_work())
