"""Admission control: a cap on open connections and on accepted connections per second."""

from __future__ import annotations


class Admission:
    def __init__(self, *, max_connections: int, per_second: float) -> None:
        self._max = max_connections
        self._rate = per_second
        self._burst = max(1.0, per_second)
        self._tokens = self._burst
        self._last = 0.0

    def admit(self, open_connections: int, now: float) -> str | None:
        """None to accept, else why not (``capacity`` or ``rate``)."""
        if open_connections >= self._max:
            return "capacity"
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return "rate"
        self._tokens -= 1.0
        return None
