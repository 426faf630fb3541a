"""Fan-out: one encoded frame, appended to every subscriber's queue, flushed once per loop turn.

Nothing here awaits. Deliveries mark the session dirty; ``flush`` (scheduled once per event-loop
turn by the driver) writes each dirty session's queue as one batched frame, so a client that
received several publications meanwhile gets them in one WebSocket frame. A session whose
transport buffer would pass its bound is closed with 3008 instead of slowing anyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from push_gateway.protocol.session import Session


class Fanout:
    def __init__(
        self, schedule: Callable[[Callable[[], None]], object], observe_flush: Callable[[float], object] | None = None
    ) -> None:
        self._schedule = schedule
        self._observe_flush = observe_flush  # seconds one flush took (the writes to every dirty client)
        self._dirty: list[Session] = []
        self._scheduled = False
        self.deliveries = 0

    def deliver(self, channel: str, subs: dict[str, Session], frame: bytes, offset: int, exclude: str | None) -> int:
        """Queue ``frame`` for every subscriber except ``exclude`` and those already past ``offset``."""
        dirty = self._dirty
        count = 0
        for client_id, session in subs.items():
            if client_id == exclude:
                continue
            floors = session.floors
            if floors and floors.get(channel, 0) >= offset:
                continue
            queue = session.queue
            if not queue:
                dirty.append(session)
            queue.append(frame)
            count += 1
        self.deliveries += count
        if dirty and not self._scheduled:
            self._scheduled = True
            self._schedule(self.flush)
        return count

    def mark(self, session: Session) -> None:
        """A session queued something outside ``deliver`` (e.g. a control push)."""
        self._dirty.append(session)
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        started = time.perf_counter()
        for session in dirty:
            session.flush()
        if self._observe_flush is not None:
            self._observe_flush(time.perf_counter() - started)
