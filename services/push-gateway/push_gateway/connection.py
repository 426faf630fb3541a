"""One client socket: an ``asyncio.Protocol`` driving websockets' sans-I/O ``ServerProtocol``.

No task, no coroutine, no message queue per connection: bytes in (``data_received``) go through
the protocol object and reach the session synchronously, and the session's writes go straight into
the asyncio transport, so fan-out never waits on a client. A plain upgrade request skips websockets'
HTTP parser (``upgrade.py``); any other request goes through it. The connection is the session's
``Transport``: ``write`` (a text frame), ``buffered`` (the transport's write buffer, which the
session bounds to shed slow clients with 3008) and ``close`` (the closing handshake, aborted after
the close timeout). The server (``server.py``) answers the HTTP request and keeps the deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol

from push_gateway.protocol.codes import CloseCode
from push_gateway.protocol.session import Session, State
from push_gateway.upgrade import plain_upgrade

if TYPE_CHECKING:
    from push_gateway.server import WsServer

log = logging.getLogger("push_gateway.connection")
_ws_log = logging.getLogger("websockets.server")  # WARNING: the gateway logs connects itself

_OPEN, _CONNECTING = WsState.OPEN, WsState.CONNECTING
_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
ABNORMAL = 1006  # no close frame: never sent, only recorded


class _TextFrames:
    """Server text frames, framed once per payload object: a publication's frame is the same bytes
    for each of its thousands of subscribers (no extensions are negotiated, and servers don't mask).
    """

    __slots__ = ("_framed", "_payload")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._framed = b""

    def __call__(self, payload: bytes) -> bytes:
        if payload is self._payload:
            return self._framed
        n = len(payload)
        if n < 126:
            header = bytes((0x81, n))
        elif n < 65536:
            header = b"\x81\x7e" + n.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + n.to_bytes(8, "big")
        self._payload, self._framed = payload, header + payload
        return self._framed


text_frame = _TextFrames()


def _close_reason(reason: str) -> str:
    """A close reason fits 123 bytes of UTF-8."""
    raw = reason.encode()
    return reason if len(raw) <= 120 else raw[:120].decode(errors="ignore")


class Connection(asyncio.Protocol):
    __slots__ = ("_close_armed", "_fragments", "_server", "address_key", "deadline", "session", "transport", "ws")

    def __init__(self, server: WsServer) -> None:
        self._server = server
        # None until the first segment: open at once for a plain upgrade, else websockets parses the request
        self.ws: ServerProtocol | None = None
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.address_key: str | None = None  # counted against its address while open
        self.deadline = 0.0  # loop time of the pending handshake or close timeout, 0: none
        self._close_armed = False
        self._fragments: tuple[Opcode, bytearray] | None = None

    # ---- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._server.opened(self)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is None:  # the first segment: a plain upgrade request arrives whole in it
            upgrade = plain_upgrade(data) if self._server.serving else None
            if upgrade is not None:
                self._server.plain_upgrade(self, upgrade)  # switch_to_websocket sets self.ws
                data = upgrade.rest
            ws = self._protocol()
        if data:
            ws.receive_data(data)
        try:
            for event in ws.events_received():
                if isinstance(event, Frame):
                    self._frame(event)
                else:
                    self._server.request(self, cast(Request, event))
            if ws.state is not _OPEN:
                self._end_session()
        except Exception:  # a bug must cost one connection, not the loop's callback
            log.exception("connection failed")
            if self.session is not None:
                self.session.close(CloseCode.SERVER_ERROR, "internal error")
            else:
                self.abort()
        self._send_pending()
        # what piles up for a client that does not read (e.g. pongs to a ping flood) is bounded too
        session = self.session
        if session is not None and session.state is not State.CLOSED:
            limit = session.node.limits.queue_bytes
            if self.buffered() > limit:
                session.close(CloseCode.SLOW, "slow")

    def eof_received(self) -> bool | None:
        self._protocol().receive_eof()
        self._send_pending()
        self._end_session()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ws is not None:
            self.ws.receive_eof()  # idempotent: the protocol object is CLOSED from here on
        self._server.lost(self)
        self._end_session()
        self.session = None

    # ---- the session's Transport ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None and ws.state is _OPEN:
            transport = self.transport
            assert transport is not None
            if not ws.writes and not ws.extensions:  # nothing of its own to send first: frame it here
                transport.write(text_frame(data))
                return
            ws.send_text(data)
            for chunk in ws.data_to_send():
                transport.write(chunk)

    def buffered(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (the close timeout aborts it if the client never answers)."""
        ws = self.ws
        if ws is not None and ws.state is _OPEN:
            ws.send_close(code, _close_reason(reason))
            self._send_pending()

    # ---- server side ------------------------------------------------------------------------------

    def switch_to_websocket(self, response: bytes) -> None:
        """Send the 101 answering a plain upgrade: frames go through an open protocol object from here."""
        self.ws = ServerProtocol(max_size=self._server.max_frame_bytes, logger=_ws_log, state=_OPEN)
        transport = self.transport
        assert transport is not None
        transport.write(response)

    def accepted(self, session: Session, address_key: str | None) -> None:
        self.session = session
        self.address_key = address_key

    def timed_out(self) -> None:
        """The handshake or the closing handshake took too long."""
        transport = self.transport
        if transport is None:
            return
        ws = self.ws
        if ws is None or (ws.state is _CONNECTING and not ws.eof_sent):
            transport.close()  # a slow or silent HTTP request (slowloris): nothing to flush
        else:
            transport.abort()

    def shutdown(self) -> None:
        """The server stops: close the session (3001), or whatever this connection still is."""
        session, ws = self.session, self.ws
        if session is not None and session.state is not State.CLOSED:
            session.close(CloseCode.SHUTDOWN, "shutdown")
        elif ws is not None and ws.state is _OPEN:
            self.close(CloseCode.SHUTDOWN, "shutdown")
        elif (ws is None or ws.state is _CONNECTING) and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ---- internals --------------------------------------------------------------------------------

    def _protocol(self) -> ServerProtocol:
        """The protocol object; websockets' own request parser unless the first segment was a plain upgrade."""
        ws = self.ws
        if ws is None:
            ws = self.ws = ServerProtocol(max_size=self._server.max_frame_bytes, logger=_ws_log)
        return ws

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._message(opcode, cast(bytes, frame.data))  # parsed frames hold bytes
            else:
                self._fragments = (opcode, bytearray(frame.data))
        elif opcode is _CONT and self._fragments is not None:
            first, buffer = self._fragments
            buffer += frame.data
            if frame.fin:
                self._fragments = None
                self._message(first, bytes(buffer))
        # ping, pong, close: the protocol object has answered; a close ends the session after the loop

    def _message(self, opcode: Opcode, data: bytes) -> None:
        session = self.session
        if session is None or session.state is State.CLOSED:
            return
        if opcode is _TEXT:
            try:
                data.decode()
            except UnicodeDecodeError as exc:
                self._protocol().fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self._end_session()
                return
        session.receive(data, time.time())

    def _end_session(self) -> None:
        """The WebSocket is closing or gone: close the session with the code that ended it."""
        session = self.session
        if session is None or session.state is State.CLOSED:
            return
        ws = self._protocol()
        close = ws.close_rcvd or ws.close_sent
        code = close.code if close is not None else ABNORMAL
        reason = close.reason if close is not None and close.reason else "client went away"
        session.close(code, reason[:120])

    def _send_pending(self) -> None:
        transport = self.transport
        if transport is None:
            return
        ws = self._protocol()
        for data in ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                try:
                    transport.write_eof()  # half-close; keep reading (and discarding) until the client closes
                except (OSError, RuntimeError):
                    transport.close()
            else:
                transport.close()
        if not self._close_armed and ws.close_expected():
            self._close_armed = True
            self._server.expect_close(self)
