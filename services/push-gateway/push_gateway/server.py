"""The gateway's port: the WebSocket endpoint and the probes, one plain asyncio protocol per socket.

``/connection/websocket`` upgrades, then admission decides: draining (3001), warming up, the
client address over its limit, the pod over its capacity or connect rate (3013), each counted in
``rejected_connections_total{reason}``. ``/healthz``, ``/readyz`` (503 with the reason while warming
up or draining) and ``/metrics`` are answered from the request, before any upgrade; anything else
is a 404. Frames over ``max_frame_bytes`` are refused by the protocol object with close 1009, invalid
UTF-8 in a text frame with 1007. The request must arrive within the handshake timeout (slowloris)
and a closing handshake end within the close timeout: one timer checks both deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from push_gateway.address_limit import client_address, parse_networks
from push_gateway.connection import Connection
from push_gateway.protocol.session import Session
from push_gateway.upgrade import WEBSOCKET_PATH, PlainUpgrade

if TYPE_CHECKING:
    from push_gateway.bootstrap import Gateway

SWEEP_SECONDS = 0.5


def _response(status: http.HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")])
    return Response(status.value, status.phrase, headers, body)


class WsServer:
    def __init__(self, gateway: Gateway) -> None:
        settings = gateway.settings
        self._gateway = gateway
        self.max_frame_bytes = settings.max_frame_bytes
        self._handshake_timeout = settings.handshake_timeout_seconds
        self._close_timeout = settings.close_timeout_seconds
        self._trusted_proxies = parse_networks(settings.trusted_proxies)
        self._forwarded_header = settings.forwarded_header
        self.connections: set[Connection] = set()
        self._timed: set[Connection] = set()  # connections with a deadline (handshake or close)
        self._listener: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_lost: asyncio.Event | None = None  # set once closing and no connection is left
        self._loop: asyncio.AbstractEventLoop | None = None
        self.serving = False
        self.port = settings.port

    async def start(self, host: str, port: int, *, backlog: int) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # a reconnect storm must queue in the backlog, not lose SYNs (asyncio's default is 100)
        self._listener = await loop.create_server(functools.partial(Connection, self), host, port, backlog=backlog)
        self.port = self._listener.sockets[0].getsockname()[1]
        self.serving = True
        self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)

    async def close(self, timeout: float) -> None:
        """Stop listening, close every connection (sessions with 3001), abort what is left after ``timeout``."""
        self.serving = False
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._listener is not None:
            self._listener.close()
        self._all_lost = asyncio.Event()
        for conn in list(self.connections):
            conn.shutdown()
        if not self.connections:
            self._all_lost.set()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that lands
        # as the awaited event fires (gh-86296), so a cancelled shutdown could go on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._all_lost.wait()
        for conn in list(self.connections):
            conn.abort()
        await asyncio.sleep(0)  # connection_lost callbacks
        if self._listener is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._listener.wait_closed()

    # ---- called by connections ----------------------------------------------------------------------

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self._set_deadline(conn, self._handshake_timeout)

    def expect_close(self, conn: Connection) -> None:
        self._set_deadline(conn, self._close_timeout)

    def lost(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._timed.discard(conn)
        if conn.address_key is not None:
            self._gateway.addresses.release(conn.address_key)
            conn.address_key = None
        if self._all_lost is not None and not self.connections:
            self._all_lost.set()

    def request(self, conn: Connection, request: Request) -> None:
        """The HTTP request websockets parsed: answer a probe, or upgrade and admit (or refuse) a WebSocket client."""
        self._arrived(conn)
        ws = conn.ws
        assert ws is not None  # it parsed the request
        path = request.path.partition("?")[0]
        if path != WEBSOCKET_PATH:
            ws.send_response(self._probe(path))
            return
        if not self.serving:
            ws.send_response(ws.reject(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server is shutting down.\n"))
            return
        response = ws.accept(request)
        if response.status_code != 101:
            ws.send_response(response)
            return
        key = self._address_key(conn, request.headers.get_all)
        request.headers.clear()  # the protocol object keeps the request as long as the connection
        ws.send_response(response)
        self._admit(conn, key)

    def plain_upgrade(self, conn: Connection, upgrade: PlainUpgrade) -> None:
        """A plain upgrade request (upgrade.py): the 101 goes out as websockets would send it, then admission."""
        self._arrived(conn)
        key = self._address_key(conn, upgrade.get_all)
        conn.switch_to_websocket(upgrade.response)
        self._admit(conn, key)

    # ---- internals --------------------------------------------------------------------------------

    def _arrived(self, conn: Connection) -> None:
        """The request is in: the handshake timeout no longer applies."""
        self._timed.discard(conn)
        conn.deadline = 0.0

    def _admit(self, conn: Connection, key: str | None) -> None:
        """Admission for an upgraded connection: a session, or a close with the reason it was turned away."""
        gateway = self._gateway
        now = time.time()
        refusal = gateway.refuse_reason(now, key)
        if refusal is not None:
            code, reason = refusal
            gateway.metrics.rejected.labels(reason=reason).inc()
            conn.close(code, reason)
            return
        session = Session(gateway.node, conn, now)
        conn.accepted(session, key)
        gateway.node.opened(session)

    def _address_key(self, conn: Connection, headers: Callable[[str], list[str]]) -> str | None:
        """The key the connection counts under in the per-address limit (None: the limit is off)."""
        addresses = self._gateway.addresses
        return addresses.key(self._client_address(conn, headers)) if addresses.enabled else None

    def _client_address(self, conn: Connection, headers: Callable[[str], list[str]]) -> str:
        peer = conn.transport.get_extra_info("peername") if conn.transport is not None else None
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        if not self._trusted_proxies:
            return host
        return client_address(host, headers(self._forwarded_header), self._trusted_proxies)

    def _probe(self, path: str) -> Response:
        gateway = self._gateway
        if path == "/healthz":
            return _response(http.HTTPStatus.OK, b"ok\n")
        if path == "/readyz":
            if gateway.ready:
                return _response(http.HTTPStatus.OK, b"ready\n")
            return _response(http.HTTPStatus.SERVICE_UNAVAILABLE, gateway.readiness_reason.encode() + b"\n")
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, gateway.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        return _response(http.HTTPStatus.NOT_FOUND, b"not found\n")

    def _set_deadline(self, conn: Connection, seconds: float) -> None:
        assert self._loop is not None
        conn.deadline = self._loop.time() + seconds
        self._timed.add(conn)

    def _sweep(self) -> None:
        assert self._loop is not None
        self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)
        now = self._loop.time()
        due = [conn for conn in self._timed if conn.deadline <= now]
        for conn in due:
            self._timed.discard(conn)
            conn.deadline = 0.0
            conn.timed_out()
