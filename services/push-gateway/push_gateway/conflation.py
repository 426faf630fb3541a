"""Conflation per channel: at most one publication per window, always the latest, never the last dropped.

The first publication on a quiet channel goes out at once; those arriving within the window
replace each other, and the survivor goes out when the window ends. Conflating per channel (not
per client) keeps fan-out encode-once: every subscriber of the channel gets the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Held = tuple[Any, ...]


class Conflator:
    def __init__(
        self, call_later: Callable[[float, Callable[[], None]], object], release: Callable[[str, Held], None]
    ) -> None:
        self._call_later = call_later
        self._release = release
        self._last: dict[str, float] = {}
        self._held: dict[str, Held] = {}
        self.conflated = 0

    def offer(self, channel: str, window: float, item: Held, now: float) -> bool:
        """True: deliver ``item`` now. False: held, delivered (or replaced) when the window ends."""
        if channel in self._held:
            self._held[channel] = item
            self.conflated += 1
            return False
        last = self._last.get(channel)
        if last is None or now - last >= window:
            self._last[channel] = now
            return True
        self._held[channel] = item
        self._call_later(last + window - now, lambda: self._fire(channel, last + window))
        return False

    def _fire(self, channel: str, at: float) -> None:
        item = self._held.pop(channel, None)
        if item is not None:
            self._last[channel] = at
            self._release(channel, item)

    def sweep(self, now: float, horizon: float = 60.0) -> None:
        for channel in [c for c, t in self._last.items() if now - t > horizon and c not in self._held]:
            del self._last[channel]
