"""The floor: a bare WebSocket broadcaster, no protocol, no auth, same asyncio runtime as the gateway.

It accepts WebSocket upgrades on ``/`` and, when told, writes one pre-framed publication (the
same push JSON shape and size the gateway sends, built once) to every socket, one frame per
publication per client, either at a fixed rate or as fast as the sockets take it (a publication
waits while any client's transport is above its high-water mark). Whatever the gateway does
beyond this (protocol, auth, history, AMQP, bookkeeping) is what the comparison charges it with.
Driven by the coordinator over a pipe, like the load workers.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.core.bus import stock_data

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


def server_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + n.to_bytes(2, "big") + payload
    return bytes([0x81, 127]) + n.to_bytes(8, "big") + payload


class Floor:
    def __init__(self) -> None:
        self.transports: list[asyncio.Transport] = []
        self.paused = 0
        self.resumed = asyncio.Event()
        self.resumed.set()


class FloorConn(asyncio.Protocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.is_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=256 * 1024)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.open:
            return  # clients say nothing we need (a close frame ends with the TCP close)
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        key = b""
        for line in self.buf[:end].split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.open = True
        self.buf = b""
        self.floor.transports.append(self.transport)

    def pause_writing(self) -> None:
        self.is_paused = True
        self.floor.paused += 1
        self.floor.resumed.clear()

    def resume_writing(self) -> None:
        self.is_paused = False
        self.floor.paused -= 1
        if self.floor.paused <= 0:
            self.floor.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open and self.transport in self.floor.transports:
            self.floor.transports.remove(self.transport)
        if self.is_paused:
            self.resume_writing()


async def broadcast(floor: Floor, *, rate: float, duration: float, chan: int = 1) -> dict[str, Any]:
    """Publish for ``duration`` s: ``rate``/s, or (rate 0) as fast as every socket takes it."""
    sent: dict[int, float] = {}
    channel = orjson.dumps(f"stock:{chan}")
    started = time.monotonic()
    offset = 0
    writes = 0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= duration:
            break
        if rate > 0:
            due = int(rate * elapsed) + 1 - offset
            if due <= 0:
                await asyncio.sleep(0.002)
                continue
        elif not floor.resumed.is_set():
            try:
                await asyncio.wait_for(floor.resumed.wait(), 1.0)
            except TimeoutError:
                pass
            continue
        offset += 1
        now = time.time()
        data = orjson.dumps(stock_data(chan, offset, now))
        # the gateway's exact push shape: {"push":{"channel":..,"pub":{"data":..,"offset":N}}}
        frame = server_frame(
            b'{"push":{"channel":' + channel + b',"pub":{"data":' + data + b',"offset":' + str(offset).encode() + b"}}}"
        )
        sent[(chan << 32) | offset] = now
        for transport in floor.transports:
            transport.write(frame)
        writes += len(floor.transports)
        await asyncio.sleep(0)
    return {"publications": offset, "writes": writes, "sent": sent, "published_at": datetime.now(UTC).isoformat()}


def floor_main(port: int, pipe: Any) -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(_serve(port, pipe))


async def _serve(port: int, pipe: Any) -> None:
    floor = Floor()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorConn(floor), "127.0.0.1", port, backlog=4096)
    stop = loop.create_future()
    pipe.send({"ready": True})

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    async def handle(msg: dict[str, Any]) -> None:
        result: Any
        if msg["cmd"] == "broadcast":
            result = await broadcast(floor, rate=msg["rate"], duration=msg["duration"])
        elif msg["cmd"] == "count":
            result = len(floor.transports)
        else:
            result = True
            finish()
        pipe.send({"id": msg["id"], "result": result})

    def reader() -> None:  # a thread: uvloop's add_reader would make the pipe non-blocking
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(finish)
                return
            loop.call_soon_threadsafe(functools.partial(loop.create_task, handle(msg)))
            if msg.get("cmd") == "exit":
                return

    import threading

    threading.Thread(target=reader, daemon=True).start()
    await stop
    server.close()
    for t in floor.transports:
        t.abort()


class FloorServer:
    """The coordinator's handle on the floor process."""

    def __init__(self, port: int) -> None:
        import multiprocessing as mp

        import psutil

        ctx = mp.get_context("spawn")
        self.port = port
        self._pipe, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=floor_main, args=(port, theirs), daemon=True, name="bench-floor")
        self.proc.start()
        theirs.close()
        assert self._pipe.recv().get("ready")
        self.ps = psutil.Process(self.proc.pid)
        self._id = 0

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    async def call(self, cmd: str, **kw: Any) -> Any:
        self._id += 1
        self._pipe.send({"id": self._id, "cmd": cmd, **kw})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._recv)

    def _recv(self) -> Any:
        return self._pipe.recv()["result"]

    def close(self) -> None:
        try:
            self._pipe.send({"id": 0, "cmd": "exit"})
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.terminate()
