"""The seam between a session and a ``websockets`` connection: synchronous writes, no awaits.

``write`` goes through the connection's sans-I/O protocol object and straight into the asyncio
transport (what ``websockets.broadcast`` does), so fan-out never waits on a client; the
session bounds what may pile up using ``buffered``.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State


class WsTransport:
    __slots__ = ("_closing", "conn")

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self._closing: asyncio.Task | None = None

    def write(self, data: bytes) -> None:
        conn = self.conn
        if conn.protocol.state is State.OPEN:
            conn.protocol.send_text(data)
            conn.send_data()

    def buffered(self) -> int:
        transport = self.conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self, code: int, reason: str) -> None:
        if self._closing is None and self.conn.protocol.state is State.OPEN:
            self._closing = asyncio.get_running_loop().create_task(self.conn.close(code, reason[:120]))
