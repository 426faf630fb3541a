"""Wires one gateway process from one Settings object. Nothing connects at import time.

Lifecycle: ``start`` opens the port (health answers at once, readiness 503), connects the
broker, reads the push log from ``now - warm_window`` and turns ready when its own marker comes
back through the log (caught up exactly). ``drain`` (SIGTERM) turns readiness off, refuses new
connections with 3001 and releases the open ones in waves over ``drain_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn

from flashline_auth import KeySet, TokenVerifier
from push_gateway.address_limit import AddressLimiter, parse_networks
from push_gateway.admin import build_admin_app
from push_gateway.admission import Admission
from push_gateway.auth import Authorizer
from push_gateway.broker import Broker
from push_gateway.metrics import Metrics
from push_gateway.namespaces import Namespace, Namespaces, parse_position_urls
from push_gateway.node import Node
from push_gateway.positions import PositionClient, PositionUnavailable
from push_gateway.protocol.codes import CloseCode
from push_gateway.protocol.session import Limits
from push_gateway.server import WsServer
from push_gateway.settings import Settings

log = logging.getLogger("push_gateway")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_channels=settings.max_channels_per_connection,
        commands_per_second=settings.commands_per_second,
        command_burst=settings.command_burst,
        queue_bytes=settings.client_queue_bytes,
        ping_interval=settings.ping_interval,
        pong_timeout=settings.pong_timeout,
        token_grace=settings.token_grace_seconds,
        connect_timeout=settings.connect_timeout_seconds,
    )


def default_broker(settings: Settings) -> Broker:
    from push_gateway.broker_rabbitmq import RabbitBroker, StreamOptions

    return RabbitBroker(settings.amqp_url, StreamOptions(prefetch=settings.stream_prefetch))


class _AdminServer(uvicorn.Server):
    """uvicorn inside the gateway's loop. SIGTERM belongs to the gateway (it drains): uvicorn must not take it.

    ``Server.serve`` would replace the process's SIGTERM/SIGINT handlers with its own for as long as it runs,
    stop the admin API on the first signal and only then re-raise it.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(
        self, settings: Settings, *, broker: Broker | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.node_id = settings.node_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.metrics = Metrics()
        namespaces = Namespaces.load(settings.namespaces_file, parse_position_urls(settings.position_urls))
        self.namespaces = namespaces
        keys = (
            KeySet.fetch(settings.trusted_keys_url)
            if settings.trusted_keys_url
            else KeySet.load(settings.trusted_keys_file)
        )
        verifier = TokenVerifier(keys, audience=settings.audience)
        self.verifier = verifier
        self.broker = broker or default_broker(settings)
        self.positions = PositionClient(timeout=settings.position_timeout_seconds, api_key=settings.internal_api_key)
        self.admission = Admission(
            max_connections=settings.max_connections, per_second=settings.max_connects_per_second
        )
        self.addresses = AddressLimiter(
            max_per_address=settings.max_connections_per_address,
            per_second=settings.max_connects_per_address_per_second,
            exempt=parse_networks(settings.address_limit_exempt),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self.node = Node(
            node_id=self.node_id,
            authorizer=Authorizer(verifier, namespaces, allow_anonymous=settings.allow_anonymous),
            limits=limits_from(settings),
            metrics=self.metrics,
            schedule=lambda fn: self._require_loop().call_soon(fn),
            call_later=lambda delay, fn: self._require_loop().call_later(delay, fn),
            lookup=self._lookup,
            clock=clock,
            max_channels=settings.max_known_channels,
            presence_expire_after=3 * settings.presence_interval,
            presence_cache_seconds=min(1.0, settings.presence_interval / 2),
            log_connections=settings.log_connections,
        )
        self.warmed = asyncio.Event()
        self.draining = False
        self._marker = uuid.uuid4().hex
        self._server: WsServer | None = None
        self._admin: uvicorn.Server | None = None
        self.port = settings.port
        self.metrics.ready.set_function(lambda: 1 if self.ready else 0)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "gateway not started"
        return self._loop

    # ---- state ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.warmed.is_set() and not self.draining

    @property
    def readiness_reason(self) -> str:
        return "draining" if self.draining else ("warming up" if not self.warmed.is_set() else "ready")

    def refuse_reason(self, now: float, address_key: str | None = None) -> tuple[int, str] | None:
        """Why a new connection is turned away (with a reconnect code), or None to accept it.

        An accepted connection with an ``address_key`` counts against its address until
        ``addresses.release(address_key)``.
        """
        if self.draining:
            return CloseCode.SHUTDOWN, "draining"
        if not self.warmed.is_set():
            return CloseCode.TOO_MANY_REQUESTS, "warming up"
        if address_key is not None:
            refusal = self.addresses.admit(address_key, now)
            if refusal is not None:
                return CloseCode.TOO_MANY_REQUESTS, refusal
        open_now = len(self.node.hub.sessions) + len(self.node.connecting)
        refusal = self.admission.admit(open_now, now)
        if refusal is not None:
            if address_key is not None:
                self.addresses.release(address_key)
            return CloseCode.TOO_MANY_REQUESTS, refusal
        return None

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        self._server = WsServer(self)
        await self._server.start(s.host, s.port, backlog=s.listen_backlog)
        self.port = self._server.port
        if s.admin_port:
            app = build_admin_app(api_key=s.admin_api_key, send_control=self.broker.publish_control)
            config = uvicorn.Config(app, host=s.admin_host, port=s.admin_port, log_level="warning", lifespan="off")
            self._admin = _AdminServer(config)
            self._spawn(self._admin.serve())
        await self.broker.connect()
        await self.broker.consume_control(self.node.control)
        await self.broker.consume_presence(lambda report: self.node.presence_board.apply(report, time.time()))
        self._spawn(self._every(1.0, self.node.tick))
        self._spawn(self._every(10.0, self._sweep))
        self._spawn(self._every(s.presence_interval, self._report_presence))
        if s.trusted_keys_url:
            self._spawn(self._every(s.trusted_keys_refresh_seconds, self._refresh_keys))
        await self._warm_up()
        log.info("gateway started", extra={"node": self.node_id, "port": self.port, "admin_port": s.admin_port})

    def _sweep(self) -> None:
        now = time.time()
        self.node.sweep()
        self.addresses.sweep(now)

    async def _refresh_keys(self) -> None:
        """Re-read the key set from its URL; on failure keep the keys we have (and say so)."""
        try:
            keys = await asyncio.to_thread(KeySet.fetch, self.settings.trusted_keys_url)
        except Exception as exc:  # noqa: BLE001 - an unreachable key endpoint must not drop clients
            log.warning("key set refresh failed; keeping the current keys", extra={"reason": str(exc)})
            return
        if set(keys.keys) != set(self.verifier.keys.keys):
            log.info("key set changed", extra={"kids": sorted(keys.keys)})
        self.verifier.use(keys)

    async def _warm_up(self) -> None:
        window = self.settings.warm_window_seconds
        if window is None:
            window = self.namespaces.longest_history_ttl
        since = datetime.now(UTC) - timedelta(seconds=window) if window > 0 else None
        started = time.monotonic()
        await self.broker.consume_push_log(since=since, on_publication=self.node.publish, on_marker=self._on_marker)
        await self.broker.publish_marker(self._marker)
        while True:
            try:
                async with asyncio.timeout(self.settings.warm_timeout_seconds):  # not wait_for: see server.py
                    await self.warmed.wait()
                break
            except TimeoutError:
                log.warning("still warming up: marker not read back yet, sending another")
                await self.broker.publish_marker(self._marker)
        log.info(
            "warmed up",
            extra={
                "seconds": round(time.monotonic() - started, 3),
                "channels": len(self.node.history),
                "window_seconds": window,
            },
        )

    def _on_marker(self, marker: str) -> None:
        if marker == self._marker:
            self.warmed.set()

    def _lookup(self, channel: str, namespace: Namespace) -> None:
        self._spawn(self._fetch_position(channel, namespace))

    async def _fetch_position(self, channel: str, namespace: Namespace) -> None:
        assert namespace.position_url
        try:
            position = await self.positions.fetch(namespace.position_url, channel)
        except PositionUnavailable as exc:
            log.warning("position lookup failed", extra={"channel": channel, "reason": str(exc)})
            self.node.position_resolved(channel, None, ok=False)
            return
        self.node.position_resolved(channel, position, ok=True)

    async def _report_presence(self) -> None:
        """Sent even when empty: it retires this pod's previous counts on the other pods at once."""
        await self.broker.publish_presence(self.node.presence_report())

    async def _every(self, seconds: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` every ``seconds``; it survives failures, and a run of them (the broker is down)
        logs one traceback, then one short line per failure, then that it recovered."""
        job = getattr(fn, "__name__", str(fn))
        failing = 0
        while True:
            await asyncio.sleep(seconds)
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                failing += 1
                if failing == 1:
                    log.exception("periodic job failed", extra={"job": job})
                else:
                    log.warning("periodic job still failing: %s", exc, extra={"job": job, "failures": failing})
                continue
            if failing:
                log.info("periodic job recovered", extra={"job": job, "failures": failing})
                failing = 0

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Readiness off, new connections refused, open ones released with 3001 in waves."""
        if self.draining:
            return
        self.draining = True
        sessions = list(self.node.hub.sessions.values()) + list(self.node.connecting)
        random.shuffle(sessions)
        window = self.settings.drain_seconds
        log.info("draining", extra={"connections": len(sessions), "window_seconds": window})
        started = time.monotonic()
        step = 0.1
        total = len(sessions)
        released = 0
        while released < total:
            elapsed = time.monotonic() - started
            due = total if window <= 0 else min(total, int(total * (elapsed + step) / window) + 1)
            for session in sessions[released:due]:
                session.close(CloseCode.SHUTDOWN, "shutdown")
            released = max(released, due)
            if released < total:
                await asyncio.sleep(step)
        self.node.close_all(CloseCode.SHUTDOWN, "shutdown")

    async def stop(self) -> None:
        if self._admin is not None:
            self._admin.should_exit = True
        self.node.close_all(CloseCode.SHUTDOWN, "shutdown")
        if self._server is not None:
            await self._server.close(timeout=3)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.broker.publish_presence(self.node.presence_board.goodbye(time.time()))
        except Exception as exc:  # noqa: BLE001 - the others expire this pod's report anyway
            log.warning("presence goodbye not sent", extra={"reason": str(exc)})
        await self.broker.close()
        await self.positions.close()
