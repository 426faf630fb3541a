"""The WebSocket endpoint and the probes on one port: a thin driver around the sessions.

``/connection/websocket`` speaks the client protocol; ``/healthz``, ``/readyz`` (503 while
warming up or draining) and ``/metrics`` are answered in ``process_request`` before any upgrade.
Frames over ``max_frame_bytes`` are refused by the websockets layer with close code 1009.
"""

from __future__ import annotations

import http
import time
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from push_gateway.protocol.session import Session, State
from push_gateway.transport import WsTransport

if TYPE_CHECKING:
    from push_gateway.bootstrap import Gateway

WEBSOCKET_PATH = "/connection/websocket"


def _response(status: http.HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")])
    return Response(status.value, status.phrase, headers, body)


class Endpoint:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        gateway = self._gateway
        if path == WEBSOCKET_PATH:
            return None
        if path == "/healthz":
            return _response(http.HTTPStatus.OK, b"ok\n")
        if path == "/readyz":
            if gateway.ready:
                return _response(http.HTTPStatus.OK, b"ready\n")
            return _response(http.HTTPStatus.SERVICE_UNAVAILABLE, gateway.readiness_reason.encode() + b"\n")
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, gateway.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        return _response(http.HTTPStatus.NOT_FOUND, b"not found\n")

    async def handle(self, conn: ServerConnection) -> None:
        gateway = self._gateway
        node = gateway.node
        now = time.time()
        refusal = gateway.refuse_reason(now)
        if refusal is not None:
            code, reason = refusal
            gateway.metrics.rejected.labels(reason=reason).inc()
            await conn.close(code, reason)
            return
        session = Session(node, WsTransport(conn), now)
        node.opened(session)
        try:
            async for message in conn:
                session.receive(message, time.time())
        except ConnectionClosed:
            pass
        finally:
            if session.state is not State.CLOSED:
                close_code = conn.close_code
                if close_code is None and conn.protocol.close_rcvd is not None:
                    close_code = conn.protocol.close_rcvd.code
                session.close(close_code or 1006, (conn.close_reason or "client went away")[:120])
