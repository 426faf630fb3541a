"""A connection answers its request on the plain path or through websockets, with the same outcome.

Drives ``Connection`` and ``WsServer`` with a fake socket: the plain upgrade (frames pipelined in
the same segment too), a request split over two segments (websockets' parser), probes, refusals,
and a socket that ends or times out before its first byte.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from push_gateway.connection import Connection
from push_gateway.metrics import Metrics
from push_gateway.protocol.codes import CloseCode
from push_gateway.server import WsServer

from .conftest import Harness

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
REQUEST = (
    b"GET /connection/websocket HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
_DATE = re.compile(rb"Date: [^\r]*\r\n")


class FakeSocket:
    def __init__(self) -> None:
        self.written = bytearray()
        self.eof = False
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class FakeGateway:
    def __init__(self, harness: Harness) -> None:
        self.settings = SimpleNamespace(
            max_frame_bytes=65536,
            handshake_timeout_seconds=10.0,
            close_timeout_seconds=2.0,
            trusted_proxies="",
            forwarded_header="X-Forwarded-For",
            port=0,
        )
        self.node = harness.node
        self.metrics = Metrics()
        self.addresses = SimpleNamespace(enabled=False)
        self.ready = True
        self.refusal: tuple[int, str] | None = None

    def refuse_reason(self, now: float, key: str | None = None) -> tuple[int, str] | None:
        return self.refusal


@pytest.fixture
def gateway(keys_dir) -> FakeGateway:
    return FakeGateway(Harness(keys_dir))


def connect(gateway: FakeGateway, *, serving: bool = True) -> tuple[WsServer, Connection, FakeSocket]:
    server = WsServer(gateway)  # type: ignore[arg-type]
    server._loop = SimpleNamespace(time=lambda: 0.0)  # type: ignore[assignment]  # deadlines only read it
    server.serving = serving
    conn, socket = Connection(server), FakeSocket()
    conn.connection_made(socket)  # type: ignore[arg-type]
    return server, conn, socket


def client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = bytes([0x80 | 126]) + len(payload).to_bytes(2, "big") if len(payload) > 125 else bytes([0x80 | len(payload)])
    head = b"\x81" + size
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


CONNECT = client_frame(orjson.dumps({"id": 1, "connect": {"token": "", "name": "t"}}))


def split_response(written: bytes) -> tuple[bytes, bytes]:
    head, _, frames = bytes(written).partition(b"\r\n\r\n")
    return _DATE.sub(b"", head), frames


@pytest.mark.parametrize("segments", [[REQUEST + CONNECT], [REQUEST, CONNECT], [REQUEST[:20], REQUEST[20:] + CONNECT]])
def test_plain_and_websockets_paths_answer_the_same(gateway: FakeGateway, segments: list[bytes]) -> None:
    server, conn, socket = connect(gateway)
    for segment in segments:
        conn.data_received(segment)
    head, frames = split_response(socket.written)
    accept = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    expected = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    assert head == expected + b"Sec-WebSocket-Accept: " + accept
    assert b'"connect":{"client"' in frames
    assert conn.session is not None and conn not in server._timed and not socket.closed


def test_a_probe_goes_through_websockets(gateway: FakeGateway) -> None:
    _, conn, socket = connect(gateway)
    conn.data_received(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert bytes(socket.written).startswith(b"HTTP/1.1 200 OK\r\n") and socket.eof


def test_a_draining_server_refuses_upgrades_with_503(gateway: FakeGateway) -> None:
    _, conn, socket = connect(gateway, serving=False)
    conn.data_received(REQUEST)
    assert bytes(socket.written).startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and conn.session is None


def test_admission_refusal_follows_the_101_with_a_close_frame(gateway: FakeGateway) -> None:
    gateway.refusal = (CloseCode.TOO_MANY_REQUESTS, "over capacity")
    server, conn, socket = connect(gateway)
    conn.data_received(REQUEST + CONNECT)
    head, frames = split_response(socket.written)
    assert head.startswith(b"HTTP/1.1 101 ") and frames.startswith(b"\x88")  # a close frame, nothing else
    assert int.from_bytes(frames[2:4], "big") == CloseCode.TOO_MANY_REQUESTS and conn.session is None
    assert conn in server._timed  # the close timeout runs


def test_a_socket_that_ends_before_its_first_byte(gateway: FakeGateway) -> None:
    server, conn, socket = connect(gateway)
    conn.eof_received()
    conn.connection_lost(None)
    assert conn not in server.connections and socket.written == b""


@pytest.mark.parametrize("stop", ["timed_out", "shutdown"])
def test_a_silent_socket_is_closed_by_the_timeout_or_shutdown(gateway: FakeGateway, stop: str) -> None:
    _, conn, socket = connect(gateway)
    getattr(conn, stop)()
    assert socket.closed and not socket.aborted and socket.written == b""
