"""Per-channel stream state: epoch, top offset, latest publication and a bounded history.

Every pod keeps this for every channel it sees on the push log, subscribed locally or not, so a
client that moves pods recovers exactly as if it had stayed. History is contiguous by
construction: a gap in offsets (a publication this pod never saw) drops what came before it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from push_gateway.namespaces import Namespace


class Applied(IntEnum):
    APPENDED = 0
    DUPLICATE = 1  # offset <= top of the same epoch: already seen, drop it
    GAP = 2  # appended, but offsets were missing before it: older history dropped
    NEW_EPOCH = 3  # the producer reset the stream: history restarts here


@dataclass(slots=True)
class Entry:
    offset: int
    body: bytes  # the encoded publication: {"data": ..., "offset": N}
    at: float  # when this pod received it (TTL clock)
    exclude: str | None = None  # the client that made the change (never sent its own echo)


class ChannelState:
    """One channel's position and history. ``latest`` is the newest publication body (a snapshot)."""

    __slots__ = ("channel", "entries", "epoch", "latest", "latest_exclude", "namespace", "top", "touched")

    def __init__(
        self,
        channel: str,
        namespace: Namespace,
        *,
        epoch: str = "",
        top: int = 0,
        latest: bytes | None = None,
        now: float = 0.0,
    ) -> None:
        self.channel = channel
        self.namespace = namespace
        self.epoch = epoch
        self.top = top
        self.latest = latest
        self.latest_exclude: str | None = None
        self.entries: deque[Entry] = deque(maxlen=namespace.history_size or 1)
        self.touched = now

    def apply(self, offset: int, epoch: str, body: bytes, now: float, exclude: str | None = None) -> Applied:
        outcome = Applied.APPENDED
        if epoch != self.epoch:
            outcome = Applied.NEW_EPOCH if self.epoch else Applied.APPENDED
            self.epoch = epoch
            self.entries.clear()
        elif offset <= self.top:
            return Applied.DUPLICATE
        elif offset > self.top + 1 and self.top:
            outcome = Applied.GAP
            self.entries.clear()
        self.top = offset
        self.latest = body
        self.latest_exclude = exclude
        self.touched = now
        if self.namespace.keeps_history:
            self.entries.append(Entry(offset, body, now, exclude))
        return outcome

    def adopt_position(self, epoch: str, top: int, latest: bytes | None, now: float) -> None:
        """Meta learned from the producer (position lookup); a later stream publication supersedes it.

        The latest publication is history too: a client one publication behind (the common case
        after a pod it was on lost the channel) recovers it instead of reloading over REST.
        """
        if self.epoch == epoch and top <= self.top:
            return
        self.epoch = epoch
        self.top = top
        self.latest = latest
        self.latest_exclude = None
        self.entries.clear()
        if latest is not None and self.namespace.keeps_history:
            self.entries.append(Entry(top, latest, now))
        self.touched = now

    def expire(self, now: float) -> None:
        ttl = self.namespace.history_ttl_seconds
        entries = self.entries
        while entries and now - entries[0].at > ttl:
            entries.popleft()

    def since(self, offset: int, now: float, client_id: str | None = None) -> list[bytes] | None:
        """Every publication after ``offset`` up to top, in order, or None if any is gone.

        Publications ``client_id`` made itself are left out, as they are in live fan-out.
        """
        if offset >= self.top:
            return []
        self.expire(now)
        entries = self.entries
        if not entries or entries[-1].offset != self.top or entries[0].offset > offset + 1:
            return None
        start = offset + 1 - entries[0].offset
        return [entries[i].body for i in range(start, len(entries)) if entries[i].exclude != client_id or not client_id]

    def latest_for(self, client_id: str) -> bytes | None:
        """The snapshot for cache-mode recovery, unless ``client_id`` made that change itself."""
        return None if self.latest_exclude == client_id else self.latest


class HistoryStore:
    """All channel states of this pod, bounded by ``max_channels`` (idle, oldest evicted first)."""

    def __init__(self, *, max_channels: int = 200_000) -> None:
        self._channels: dict[str, ChannelState] = {}
        self._max = max_channels

    def __len__(self) -> int:
        return len(self._channels)

    def get(self, channel: str) -> ChannelState | None:
        return self._channels.get(channel)

    def get_or_create(self, channel: str, namespace: Namespace, now: float) -> ChannelState:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = ChannelState(channel, namespace, now=now)
        return state

    def sweep(self, now: float, active: set[str] | dict) -> int:
        """Expire history; forget channels idle past their TTL (not locally active); enforce the cap."""
        dropped = 0
        for channel, state in list(self._channels.items()):
            state.expire(now)
            if channel in active:
                continue
            if now - state.touched > max(state.namespace.history_ttl_seconds, 60.0):
                del self._channels[channel]
                dropped += 1
        if len(self._channels) > self._max:
            idle = sorted((s for c, s in self._channels.items() if c not in active), key=lambda s: s.touched)
            for state in idle[: len(self._channels) - self._max]:
                del self._channels[state.channel]
                dropped += 1
        return dropped
