"""One client connection's protocol state machine, sans-I/O.

The driver feeds it frames (``receive``) and clock ticks (``tick``); it answers through a
``Transport`` (write bytes, close with a code) and never awaits. Work that needs I/O (asking a
producer where an unknown channel stands) is requested from the node, and the command is
re-run when the answer is in (``resume``). Time is always passed in (unix seconds).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from push_gateway.auth import ANONYMOUS, Denied, Grant, Principal
from push_gateway.history import ChannelState
from push_gateway.namespaces import Presence, Recovery
from push_gateway.protocol import frames
from push_gateway.protocol.codes import CloseCode, ErrorCode, UnsubscribeCode

if TYPE_CHECKING:
    from push_gateway.node import Node

log = logging.getLogger("push_gateway.session")

FLAG_REJECT_UNRECOVERED = 2
MAX_BATCH_BYTES = 64 * 1024


class Transport(Protocol):
    """What a session needs from its connection."""

    def write(self, data: bytes) -> None: ...
    def buffered(self) -> int: ...
    def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    max_channels: int = 128
    commands_per_second: float = 50.0
    command_burst: int = 100
    queue_bytes: int = 1024 * 1024
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    token_grace: float = 5.0
    connect_timeout: float = 10.0
    max_history: int = 100


class State(IntEnum):
    CONNECTING = 0
    CONNECTED = 1
    CLOSED = 2


class _Deferred(Exception):
    """A command waits for channel positions; it is re-run by ``resume``."""


class Sub:
    __slots__ = ("expires_at", "server_side")

    def __init__(self, expires_at: int, server_side: bool = False) -> None:
        self.expires_at = expires_at
        self.server_side = server_side


class Session:
    __slots__ = (  # noqa: RUF023 - grouped by meaning, not sorted
        "node",
        "transport",
        "client_id",
        "state",
        "principal",
        "subs",
        "floors",
        "queue",
        "_tokens",
        "_last_refill",
        "_rejected",
        "_next_ping",
        "_pong_deadline",
        "_opened",
        "_deferred",
        "wake_at",
        "close_code",
        "close_reason",
        "name",
    )

    def __init__(self, node: Node, transport: Transport, now: float, *, client_id: str | None = None) -> None:
        self.node = node
        self.transport = transport
        self.client_id = client_id or str(uuid.uuid4())
        self.state = State.CONNECTING
        self.principal: Principal = ANONYMOUS
        self.subs: dict[str, Sub] = {}
        self.floors: dict[str, int] = {}  # channel -> offset this client already has (pod lags it)
        self.queue: list[bytes] = []
        self._tokens = float(node.limits.command_burst)
        self._last_refill = now
        self._rejected = 0
        self._opened = now
        self._next_ping = 0.0
        self._pong_deadline = 0.0
        self._deferred: list[tuple[dict[str, Any], set[str]]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.name = ""
        self.wake_at = 0.0  # when the node's timers will next tick this session (0: not scheduled)
        self.schedule()

    @property
    def user(self) -> str:
        return self.principal.user

    # ---- input ---------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> None:
        """Handle one frame from the client: replies are queued and flushed before returning."""
        if self.state is State.CLOSED:
            return
        try:
            commands = frames.decode_commands(data)
        except frames.BadFrame as exc:
            self.close(CloseCode.BAD_REQUEST, str(exc)[:100])
            return
        for command in commands:
            if self.state is State.CLOSED:
                return
            self._handle(command, now)
        self.schedule()  # a connect, subscribe or refresh may bring a deadline closer
        self.flush()

    def _handle(self, command: dict[str, Any], now: float) -> None:
        command_id = command.get("id")
        if not command_id:
            if len(command) == 0 or (len(command) == 1 and "id" in command):
                self._pong_deadline = 0.0  # a pong
                return
            if "send" in command:
                return  # async messages: nothing to do, clients never need them here
            self.close(CloseCode.BAD_REQUEST, "command without id")
            return
        if not isinstance(command_id, int) or command_id < 0:
            self.close(CloseCode.BAD_REQUEST, "bad command id")
            return
        if not self._take_token(now):
            if self.state is not State.CLOSED:
                self._error(command_id, ErrorCode.TOO_MANY_REQUESTS)
            return
        method, params = _method_of(command)
        if method is None or not isinstance(params, dict):
            self._error(command_id, ErrorCode.BAD_REQUEST if method else ErrorCode.METHOD_NOT_FOUND)
            return
        if self.state is State.CONNECTING and method != "connect":
            self.close(CloseCode.BAD_REQUEST, "connect first")
            return
        self._dispatch(command_id, method, params, command, now)

    def _dispatch(
        self, command_id: int, method: str, params: dict[str, Any], command: dict[str, Any], now: float
    ) -> None:
        handler = _HANDLERS.get(method)
        if handler is None:
            self._error(command_id, ErrorCode.METHOD_NOT_FOUND)
            return
        try:
            handler(self, command_id, params, now)
        except Denied as exc:
            log.info(
                "denied",
                extra={
                    "client": self.client_id,
                    "user": self.user,
                    "method": method,
                    "reason": str(exc),
                    "code": int(exc.code),
                },
            )
            self._error(command_id, exc.code)
            if method == "connect" and exc.code is ErrorCode.UNAUTHORIZED:
                self.flush()
                self.close(CloseCode.INVALID_TOKEN, "invalid token")
        except _Deferred as exc:
            self._deferred.append((command, set(exc.args[0])))

    def resume(self, channel: str, ok: bool, now: float) -> None:
        """A channel position lookup finished: re-run the commands waiting for it."""
        if self.state is State.CLOSED:
            return
        waiting, self._deferred = self._deferred, []
        for command, channels in waiting:
            channels.discard(channel)
            command_id = command["id"]
            if not ok:
                self._error(command_id, ErrorCode.INTERNAL, "channel position unavailable, retry")
            elif channels:
                self._deferred.append((command, channels))
            else:
                method, params = _method_of(command)
                assert method is not None
                self._dispatch(command_id, method, params, command, now)
        self.schedule()
        self.flush()

    def _take_token(self, now: float) -> bool:
        limits = self.node.limits
        refill = (now - self._last_refill) * limits.commands_per_second
        self._tokens = min(float(limits.command_burst), self._tokens + refill)
        self._last_refill = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._rejected = 0
            return True
        self._rejected += 1
        if self._rejected > limits.command_burst:
            self.close(CloseCode.TOO_MANY_ERRORS, "command flood")
        return False

    # ---- commands --------------------------------------------------------------------------

    def _connect(self, command_id: int, params: dict[str, Any], now: float) -> None:
        if self.state is not State.CONNECTING:
            raise Denied(ErrorCode.BAD_REQUEST, "already connected")
        token = params.get("token") or ""
        if not isinstance(token, str):
            raise Denied(ErrorCode.BAD_REQUEST, "token must be a string")
        principal = self.node.authorizer.connect(token)
        if principal.expires_at and principal.expires_at <= now:
            raise Denied(ErrorCode.TOKEN_EXPIRED, "token expired")
        subs_param = params.get("subs")
        recover_subs: dict[str, Any] = subs_param if isinstance(subs_param, dict) else {}
        grants: list[tuple[str, Grant, ChannelState | None]] = []
        missing: list[str] = []
        for channel in principal.channels[: self.node.limits.max_channels]:
            try:
                grant = self.node.authorizer.subscribe(principal, channel)
            except Denied as exc:
                log.info(
                    "server-side subscription refused",
                    extra={"client": self.client_id, "user": principal.user, "channel": channel, "reason": str(exc)},
                )
                continue
            state = self._channel_state(channel, grant)
            if state is False:
                missing.append(channel)
            else:
                grants.append((channel, grant, state))
        if missing:
            raise _Deferred(missing)
        self.principal = principal
        self.name = str(params.get("name") or "")[:32]
        self.state = State.CONNECTED
        self.wake_at = 0.0  # the connect timeout no longer applies: the next wake-up is the ping (schedule)
        self._next_ping = now + self.node.limits.ping_interval
        result: dict[str, Any] = {
            "client": self.client_id,
            "version": self.node.version,
            "ping": int(self.node.limits.ping_interval),
            "pong": True,
            "node": self.node.node_id,
            "session": self.client_id,
        }
        if principal.expires_at:
            result["expires"] = True
            result["ttl"] = max(1, principal.expires_at - int(now))
        subs: dict[str, Any] = {}
        for channel, grant, state in grants:
            position = recover_subs.get(channel)
            recover: dict[str, Any] = position if isinstance(position, dict) else {}
            sub_result = self._position_result(channel, grant, state, recover, 0, now)
            self._attach(channel, grant, server_side=True)
            subs[channel] = sub_result
        if subs:
            result["subs"] = subs
        self.node.connected(self, now)
        self.queue.append(frames.reply(command_id, "connect", result))

    def _subscribe(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise Denied(ErrorCode.BAD_REQUEST, "channel required")
        if channel in self.subs:
            raise Denied(ErrorCode.ALREADY_SUBSCRIBED, channel)
        if len(self.subs) >= self.node.limits.max_channels:
            raise Denied(ErrorCode.LIMIT_EXCEEDED, "too many channels")
        token = params.get("token") or ""
        if not isinstance(token, str):
            raise Denied(ErrorCode.BAD_REQUEST, "token must be a string")
        grant = self.node.authorizer.subscribe(self.principal, channel, token)
        if grant.expires_at and grant.expires_at <= now:
            raise Denied(ErrorCode.TOKEN_EXPIRED, "subscription token expired")
        state = self._channel_state(channel, grant)
        if state is False:
            raise _Deferred([channel])
        recover = params if params.get("recover") else {}
        flag_param = params.get("flag")
        flag = flag_param if isinstance(flag_param, int) else 0
        result = self._position_result(channel, grant, state, recover, flag, now)
        self._attach(channel, grant)
        self.queue.append(frames.reply(command_id, "subscribe", result))

    def _channel_state(self, channel: str, grant: Grant) -> ChannelState | Literal[False] | None:
        """The channel's state; None when nothing is known and nobody can tell; False: lookup pending."""
        state = self.node.history.get(channel)
        if state is not None or not grant.namespace.recoverable:
            return state
        if grant.namespace.position_url and self.node.request_position(channel, grant.namespace, self):
            return False
        return None

    def _position_result(
        self, channel: str, grant: Grant, state: ChannelState | None, recover: dict[str, Any], flag: int, now: float
    ) -> dict[str, Any]:
        """The subscribe result: position, and recovered publications when asked. Raises Denied(112)."""
        ns = grant.namespace
        result: dict[str, Any] = {}
        if grant.expires_at:
            result["expires"] = True
            result["ttl"] = max(1, grant.expires_at - int(now))
        if not ns.recoverable:
            return result
        epoch = state.epoch if state else ""
        top = state.top if state else 0
        result.update(recoverable=True, positioned=True, epoch=epoch, offset=top)
        if not recover.get("recover"):
            return result
        result["was_recovering"] = True
        since = recover.get("offset", 0)
        since_epoch = recover.get("epoch", "")
        if not isinstance(since, int) or since < 0 or not isinstance(since_epoch, str):
            raise Denied(ErrorCode.BAD_REQUEST, "bad recovery position")
        publications: list[bytes] | None = None
        # "" is the epoch we report for a channel nobody ever published on: its first epoch, whatever
        # the producer names it, continues from there.
        if since_epoch == epoch or since_epoch == "":
            if since >= top:
                publications = []
                if since > top:  # this pod lags the stream: hold back what the client has
                    self.floors[channel] = since
                    result["offset"] = since
            elif state is not None and ns.recovery is Recovery.STREAM:
                publications = state.since(since, now, self.client_id)
            elif state is not None and state.latest is not None:
                latest = state.latest_for(self.client_id)
                publications = [latest] if latest is not None else []
        if publications is None:
            if flag & FLAG_REJECT_UNRECOVERED:
                raise Denied(ErrorCode.UNRECOVERABLE_POSITION, "position is gone")
            return result
        result["recovered"] = True
        if publications:
            result["publications"] = [orjson.Fragment(p) for p in publications]
        return result

    def _attach(self, channel: str, grant: Grant, *, server_side: bool = False) -> None:
        self.subs[channel] = Sub(grant.expires_at, server_side)
        self.node.subscribed(channel, self)

    def _unsubscribe(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel = params.get("channel")
        if isinstance(channel, str) and channel in self.subs:
            self._detach(channel)
        self.queue.append(frames.reply(command_id, "unsubscribe", {}))

    def _detach(self, channel: str) -> None:
        self.subs.pop(channel, None)
        self.floors.pop(channel, None)
        self.node.unsubscribed(channel, self)

    def _refresh(self, command_id: int, params: dict[str, Any], now: float) -> None:
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise Denied(ErrorCode.BAD_REQUEST, "token required")
        principal = self.node.authorizer.refresh(self.principal, token)
        if principal.expires_at and principal.expires_at <= now:
            raise Denied(ErrorCode.TOKEN_EXPIRED, "token expired")
        self.principal = principal
        result: dict[str, Any] = {"client": self.client_id, "version": self.node.version}
        if principal.expires_at:
            result.update(expires=True, ttl=max(1, principal.expires_at - int(now)))
        self.queue.append(frames.reply(command_id, "refresh", result))

    def _sub_refresh(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel, token = params.get("channel"), params.get("token")
        if not isinstance(channel, str) or not isinstance(token, str) or not token:
            raise Denied(ErrorCode.BAD_REQUEST, "channel and token required")
        sub = self.subs.get(channel)
        if sub is None:
            raise Denied(ErrorCode.BAD_REQUEST, "not subscribed")
        expires_at = self.node.authorizer.sub_refresh(self.principal, channel, token)
        if expires_at <= now:
            raise Denied(ErrorCode.TOKEN_EXPIRED, "subscription token expired")
        sub.expires_at = expires_at
        result = {"expires": True, "ttl": max(1, expires_at - int(now))}
        self.queue.append(frames.reply(command_id, "sub_refresh", result))

    def _subscribed_namespace(self, params: dict[str, Any]):
        channel = params.get("channel")
        if not isinstance(channel, str) or channel not in self.subs:
            raise Denied(ErrorCode.PERMISSION_DENIED, "subscribe to the channel first")
        _, ns = self.node.authorizer.namespace_of(channel)
        return channel, ns

    def _history(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel, ns = self._subscribed_namespace(params)
        if not ns.keeps_history:
            raise Denied(ErrorCode.NOT_AVAILABLE, "no history in this namespace")
        state = self.node.history.get(channel)
        epoch, top = (state.epoch, state.top) if state else ("", 0)
        limit_param, since_param = params.get("limit"), params.get("since")
        limit = limit_param if isinstance(limit_param, int) else 0
        since = since_param if isinstance(since_param, dict) else None
        result: dict[str, Any] = {"epoch": epoch, "offset": top}
        if state is not None and limit != 0:
            state.expire(now)
            entries = list(state.entries)
            if since is not None:
                if since.get("epoch") != epoch:
                    raise Denied(ErrorCode.UNRECOVERABLE_POSITION, "epoch changed")
                after = since.get("offset", 0)
                entries = (
                    [e for e in entries if e.offset > after]
                    if not params.get("reverse")
                    else [e for e in entries if e.offset < after]
                )
            if params.get("reverse"):
                entries.reverse()
            cap = self.node.limits.max_history
            entries = entries[: min(limit, cap) if limit > 0 else cap]
            if entries:
                result["publications"] = [orjson.Fragment(e.body) for e in entries]
        self.queue.append(frames.reply(command_id, "history", result))

    def _presence_stats(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel, ns = self._subscribed_namespace(params)
        if ns.presence is Presence.NONE:
            raise Denied(ErrorCode.NOT_AVAILABLE, "no presence in this namespace")
        clients, users = self.node.presence_stats(channel)
        result = {k: v for k, v in (("num_clients", clients), ("num_users", users)) if v}
        self.queue.append(frames.reply(command_id, "presence_stats", result))

    def _presence(self, command_id: int, params: dict[str, Any], now: float) -> None:
        channel, ns = self._subscribed_namespace(params)
        if ns.presence is not Presence.FULL:
            raise Denied(ErrorCode.NOT_AVAILABLE, "no presence list in this namespace")
        self.queue.append(frames.reply(command_id, "presence", {"presence": self.node.presence(channel)}))

    def _publish(self, command_id: int, params: dict[str, Any], now: float) -> None:
        raise Denied(ErrorCode.PERMISSION_DENIED, "clients do not publish; use the REST API")

    def _rpc(self, command_id: int, params: dict[str, Any], now: float) -> None:
        raise Denied(ErrorCode.METHOD_NOT_FOUND, "no rpc")

    # ---- server-initiated ----------------------------------------------------------------------

    def next_due(self) -> float:
        """When ``tick`` next has something to check: connect timeout, ping, pong deadline or an expiry."""
        limits = self.node.limits
        if self.state is State.CONNECTING:
            return self._opened + limits.connect_timeout
        due = self._next_ping
        if self._pong_deadline:
            due = min(due, self._pong_deadline)
        grace = limits.token_grace
        if self.principal.expires_at:
            due = min(due, self.principal.expires_at + grace)
        for sub in self.subs.values():
            if sub.expires_at:
                due = min(due, sub.expires_at + grace)
        return due

    def schedule(self) -> None:
        """Make sure the node's timers tick this session by ``next_due`` (a later wake-up is harmless)."""
        if self.state is State.CLOSED:
            return
        due = self.next_due()
        if not self.wake_at or due < self.wake_at:
            self.wake_at = due
            self.node.wake(self, due)

    def tick(self, now: float) -> None:
        """Pings, pong deadline, token and grant expiry, connect timeout."""
        if self.state is State.CONNECTING:
            if now - self._opened > self.node.limits.connect_timeout:
                self.close(CloseCode.STALE, "no connect command")
            return
        if self.state is State.CLOSED:
            return
        limits = self.node.limits
        if self._pong_deadline and now > self._pong_deadline:
            self.close(CloseCode.NO_PONG, "no pong")
            return
        expires = self.principal.expires_at
        if expires and now > expires + limits.token_grace:
            self.close(CloseCode.TOKEN_EXPIRED, "token expired")
            return
        for channel, sub in list(self.subs.items()):
            if sub.expires_at and now > sub.expires_at + limits.token_grace:
                self.server_unsubscribe(channel, UnsubscribeCode.EXPIRED, "subscription expired")
        if now >= self._next_ping:
            self._next_ping = now + limits.ping_interval
            if not self._pong_deadline:
                self._pong_deadline = now + limits.pong_timeout
            self.queue.append(frames.PING)
        self.flush()

    def server_unsubscribe(
        self, channel: str, code: int = UnsubscribeCode.SERVER, reason: str = "server unsubscribe"
    ) -> bool:
        if channel not in self.subs:
            return False
        self._detach(channel)
        self.queue.append(frames.unsubscribe_push(channel, int(code), reason))
        self.node.fanout.mark(self)
        return True

    def flush(self) -> None:
        """Write queued replies and pushes as few frames as possible; shed a client that can't keep up."""
        queue = self.queue
        if not queue or self.state is State.CLOSED:
            queue.clear()
            return
        if len(queue) == 1:
            chunks = [queue[0]]
        else:
            batch: list[bytes] = []
            chunks, size = [], 0
            for item in queue:
                if batch and size + len(item) > MAX_BATCH_BYTES:
                    chunks.append(b"\n".join(batch))
                    batch, size = [], 0
                batch.append(item)
                size += len(item) + 1
            chunks.append(b"\n".join(batch))
        queue.clear()
        transport = self.transport
        pending = transport.buffered()
        limit = self.node.limits.queue_bytes
        for chunk in chunks:
            pending += len(chunk)
            if pending > limit:
                self.close(CloseCode.SLOW, "slow")
                return
            transport.write(chunk)

    def close(self, code: int, reason: str = "") -> None:
        """End the session: leave every channel, then tell the transport to close."""
        if self.state is State.CLOSED:
            return
        was_connected = self.state is State.CONNECTED
        self.state = State.CLOSED
        self.close_code = int(code)
        self.close_reason = reason or (CloseCode(code).reason if code in CloseCode._value2member_map_ else "")
        for channel in list(self.subs):
            self._detach(channel)
        self.queue.clear()
        self._deferred.clear()
        self.node.closed(self, was_connected)
        self.transport.close(self.close_code, self.close_reason)

    def _error(self, command_id: int, code: ErrorCode, message: str | None = None) -> None:
        self.queue.append(frames.error_reply(command_id, code, message))


def _method_of(command: dict[str, Any]) -> tuple[str | None, Any]:
    """The method a command names; unknown extra fields are ignored, an unknown method is returned as is."""
    other: tuple[str | None, Any] = (None, None)
    for key, value in command.items():
        if key in _HANDLERS:
            return key, value
        if key != "id" and other[0] is None:
            other = (key, value)
    return other


_HANDLERS = {
    "connect": Session._connect,
    "subscribe": Session._subscribe,
    "unsubscribe": Session._unsubscribe,
    "refresh": Session._refresh,
    "sub_refresh": Session._sub_refresh,
    "history": Session._history,
    "presence": Session._presence,
    "presence_stats": Session._presence_stats,
    "publish": Session._publish,
    "rpc": Session._rpc,
}
