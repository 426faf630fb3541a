"""The pod's synchronous core: publications in from the push log, out to local subscribers.

Owns the hub, the channel states (history), fan-out, conflation and presence, and answers the
sessions' questions about them. No asyncio here: the driver passes in a scheduler, the clock,
and a ``lookup`` callback that asks a producer where an unknown channel stands (the answer comes
back through ``position_resolved``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from push_gateway.auth import Authorizer
from push_gateway.broker import Incoming
from push_gateway.conflation import Conflator
from push_gateway.fanout import Fanout
from push_gateway.history import Applied, HistoryStore
from push_gateway.hub import Hub
from push_gateway.metrics import Metrics
from push_gateway.namespaces import Namespace
from push_gateway.presence import PresenceBoard
from push_gateway.protocol import frames
from push_gateway.protocol.codes import CloseCode, UnsubscribeCode
from push_gateway.protocol.session import Limits, Session
from push_gateway.user_sketch import UserSet

log = logging.getLogger("push_gateway.node")
# Disconnects the client chose (or a network drop): routine, like connects (see ``log_connections``).
_CLIENT_WENT_AWAY = frozenset({1000, 1001, 1005, 1006})

VERSION = "flashline-gateway/1.0"


@dataclass(frozen=True, slots=True)
class Position:
    """A producer's answer about a channel: its position and latest data (None: never published)."""

    epoch: str
    offset: int
    data: Any = None


Lookup = Callable[[str, Namespace], None]


class Node:
    def __init__(
        self,
        *,
        node_id: str,
        authorizer: Authorizer,
        limits: Limits,
        metrics: Metrics,
        schedule: Callable[[Callable[[], None]], object],
        call_later: Callable[[float, Callable[[], None]], object],
        lookup: Lookup | None = None,
        clock: Callable[[], float] = time.time,
        max_channels: int = 200_000,
        presence_expire_after: float = 6.0,
        presence_cache_seconds: float = 1.0,
        log_connections: bool = True,
    ) -> None:
        """``log_connections``: connects and client-chosen disconnects at INFO (False: DEBUG, for
        an operator who finds the metrics enough); disconnects the gateway decides are always at INFO."""
        self.node_id = node_id
        self.version = VERSION
        self.authorizer = authorizer
        self.namespaces = authorizer.namespaces
        self.limits = limits
        self.metrics = metrics
        self.clock = clock
        self.hub = Hub()
        self.history = HistoryStore(max_channels=max_channels)
        self.fanout = Fanout(schedule, self.metrics.flush_seconds.observe)
        self.conflator = Conflator(call_later, self._release_conflated)
        self.presence_board = PresenceBoard(node_id, expire_after=presence_expire_after)
        self._presence_cache: dict[str, tuple[float, tuple[int, int]]] = {}
        self._presence_cache_seconds = presence_cache_seconds
        self._lookup = lookup
        self._waiting: dict[str, list[Session]] = {}
        self._routine_level = logging.INFO if log_connections else logging.DEBUG
        self.connecting: set[Session] = set()
        # (due, seq, session): each session is ticked when it has something to check, not every second
        self._timers: list[tuple[float, int, Session]] = []
        self._timer_seq = itertools.count()
        self._encoded_names: dict[str, bytes] = {}
        metrics.connections.set_function(lambda: len(self.hub.sessions))
        metrics.subscriptions.set_function(lambda: self.hub.subscriptions)
        metrics.channels.set_function(lambda: len(self.hub.channels))
        metrics.known_channels.set_function(lambda: len(self.history))

    # ---- the push log ----------------------------------------------------------------------------

    def publish(self, pub: Incoming) -> None:
        """One publication from the push log: record it, then deliver it to local subscribers."""
        started = time.perf_counter()
        now = self.clock()
        ns = self.namespaces.get(_namespace_of(pub.channel))
        if ns is None:
            return
        state = self.history.get_or_create(pub.channel, ns, now)
        body = frames.pub_body(pub.data, pub.offset)
        outcome = state.apply(pub.offset, pub.epoch, body, now, pub.exclude_client)
        if outcome is Applied.DUPLICATE:
            self.metrics.duplicates.inc()
            return
        self.metrics.publications.inc()
        subs = self.hub.channels.get(pub.channel)
        if not subs:
            return
        if pub.published_at:
            self.metrics.fanout_lag.observe(max(0.0, now - pub.published_at))
        name = self._encoded_names.get(pub.channel)
        if name is None:
            name = self._encoded_names[pub.channel] = orjson.dumps(pub.channel)
        frame = frames.pub_push(name, body)
        item = (frame, pub.offset, pub.exclude_client)
        if ns.conflation_ms and not self.conflator.offer(pub.channel, ns.conflation_ms / 1000, item, now):
            return
        delivered = self.fanout.deliver(pub.channel, subs, frame, pub.offset, pub.exclude_client)
        self.metrics.deliveries.inc(delivered)
        self.metrics.fanout_seconds.observe(time.perf_counter() - started)

    def _release_conflated(self, channel: str, item: tuple[Any, ...]) -> None:
        subs = self.hub.channels.get(channel)
        if subs:
            frame, offset, exclude = item
            self.metrics.deliveries.inc(self.fanout.deliver(channel, subs, frame, offset, exclude))

    # ---- channel positions from producers ------------------------------------------------------

    def request_position(self, channel: str, namespace: Namespace, session: Session) -> bool:
        """Ask the producer about ``channel`` (coalesced); ``session.resume`` follows. False: no way to ask."""
        if self._lookup is None:
            return False
        waiters = self._waiting.get(channel)
        if waiters is None:
            self._waiting[channel] = [session]
            self._lookup(channel, namespace)
        elif session not in waiters:
            waiters.append(session)
        return True

    def position_resolved(self, channel: str, position: Position | None, ok: bool) -> None:
        """The producer answered (``position`` None with ok: never published), or could not be asked."""
        now = self.clock()
        if ok:
            ns = self.namespaces.get(_namespace_of(channel))
            if ns is not None:
                state = self.history.get(channel)
                if state is None:
                    state = self.history.get_or_create(channel, ns, now)
                    if position is not None:
                        latest = None
                        if position.data is not None and position.offset > 0:
                            latest = frames.pub_body(orjson.dumps(position.data), position.offset)
                        state.adopt_position(position.epoch, position.offset, latest, now)
        for session in self._waiting.pop(channel, ()):
            session.resume(channel, ok, now)

    # ---- sessions ------------------------------------------------------------------------------

    def opened(self, session: Session) -> None:
        """A transport was accepted; the session has yet to send ``connect``."""
        self.connecting.add(session)

    def connected(self, session: Session, now: float) -> None:
        self.connecting.discard(session)
        self.hub.add_session(session)
        if log.isEnabledFor(self._routine_level):
            log.log(
                self._routine_level,
                "connect",
                extra={
                    "client": session.client_id,
                    "user": session.user,
                    "sdk": session.name,
                    "channels": len(session.subs),
                },
            )

    def closed(self, session: Session, was_connected: bool) -> None:
        self.connecting.discard(session)
        self.hub.remove_session(session)
        for waiters in self._waiting.values():
            if session in waiters:
                waiters.remove(session)
        self.metrics.disconnects.labels(code=str(session.close_code)).inc()
        level = self._routine_level if session.close_code in _CLIENT_WENT_AWAY else logging.INFO
        if log.isEnabledFor(level):  # as for connects: no record built for a line nobody keeps
            log.log(
                level,
                "disconnect",
                extra={
                    "client": session.client_id,
                    "user": session.user,
                    "code": session.close_code,
                    "reason": session.close_reason,
                    "connected": was_connected,
                },
            )

    def subscribed(self, channel: str, session: Session) -> None:
        self.hub.subscribe(channel, session)

    def unsubscribed(self, channel: str, session: Session) -> None:
        if self.hub.unsubscribe(channel, session):
            self._encoded_names.pop(channel, None)

    def wake(self, session: Session, due: float) -> None:
        """Tick ``session`` at ``due`` (its ``wake_at``; entries it has since moved are skipped)."""
        heapq.heappush(self._timers, (due, next(self._timer_seq), session))

    def tick(self) -> None:
        """Tick the sessions whose wake-up is due: the cost follows the deadlines, not the connections."""
        now = self.clock()
        timers, due = self._timers, []
        while timers and timers[0][0] <= now:
            at, _, session = heapq.heappop(timers)
            if session.wake_at == at:
                session.wake_at = 0.0
                due.append(session)
        for session in due:
            session.tick(now)
            session.schedule()

    def sweep(self) -> None:
        now = self.clock()
        self.history.sweep(now, self.hub.channels)
        self.conflator.sweep(now)
        self._presence_cache = {c: v for c, v in self._presence_cache.items() if v[0] > now}

    # ---- presence --------------------------------------------------------------------------------

    def presence_stats(self, channel: str) -> tuple[int, int]:
        """Fleet (clients, distinct users), cached per channel for ``presence_cache_seconds``.

        The remote part is a report interval old anyway; the cache keeps a hot channel whose
        thousands of viewers poll the count from costing a scan and a sketch merge per poll.
        """
        now = self.clock()
        cached = self._presence_cache.get(channel)
        if cached is not None and cached[0] > now:
            return cached[1]
        subs = self.hub.channels.get(channel) or {}
        local_users = UserSet.of_users(s.user for s in subs.values())
        stats = self.presence_board.fleet_stats(channel, len(subs), local_users, now)
        if self._presence_cache_seconds > 0:
            self._presence_cache[channel] = (now + self._presence_cache_seconds, stats)
        return stats

    def presence(self, channel: str) -> dict[str, Any]:
        entries = dict(self.presence_board.remote_clients(channel, self.clock()))
        for session in self.hub.clients(channel):
            entries[session.client_id] = {"user": session.user, "client": session.client_id}
        return entries

    def presence_report(self) -> dict[str, Any]:
        return self.presence_board.build_report(self.hub, self.namespaces, self.clock())

    # ---- control (admin commands from any pod) --------------------------------------------------

    def control(self, message: dict[str, Any]) -> int:
        """Apply an admin command to local sessions; the number affected."""
        kind, user = message.get("type"), message.get("user")
        if not isinstance(user, str) or not user:
            return 0
        affected = 0
        if kind == "disconnect":
            for session in self.hub.sessions_of(user):
                session.close(CloseCode.FORCE_DISCONNECT, "force disconnect")
                affected += 1
        elif kind == "unsubscribe":
            channel = message.get("channel")
            if isinstance(channel, str):
                for session in self.hub.sessions_of(user):
                    if session.server_unsubscribe(channel, UnsubscribeCode.SERVER, "revoked"):
                        affected += 1
        if affected:
            log.info("control applied", extra={"type": kind, "user": user, "affected": affected})
        return affected

    def close_all(self, code: int, reason: str) -> None:
        for session in list(self.hub.sessions.values()):
            session.close(code, reason)


def _namespace_of(channel: str) -> str:
    colon = channel.find(":")
    hash_ = channel.find("#")
    if hash_ != -1 and (colon == -1 or hash_ < colon):
        return channel[:hash_]
    return channel[:colon] if colon > 0 else ""
