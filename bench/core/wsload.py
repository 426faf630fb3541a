"""The lean load client: thousands of WebSocket connections per process, just enough protocol.

Each worker process runs one event loop (uvloop when installed) and speaks, per connection:
the HTTP upgrade, ``connect`` (a JWT or anonymous) + ``subscribe`` in one batched frame, pong
answers to the server's ``{}`` pings, and publication pushes. Nothing is JSON-parsed on the hot
path: a push line is sliced for its channel and offset; replies (rare) go through orjson.

Per delivery a worker keeps one ``(key, receive time)`` pair (``key = channel index << 32 |
offset``), so the coordinator joins them with the publication times (injector's or the push
log's ``published_at``) into end-to-end latencies; per connection it keeps first/last offset,
gaps and duplicates, so loss is exact without storing anything per publication per client.

Client frames are masked with the all-zero key: valid WebSocket (the MASK bit is set, the server
must accept any key) and no XOR cost. The coordinator drives workers over a pipe (``Worker``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import random
import re
import time
from array import array
from collections import defaultdict
from typing import Any

import orjson

PUSH_PREFIX = b'{"push":{"channel":"'
PUSH_PREFIX_LEN = len(PUSH_PREFIX)
OFFSET_KEY = b'"offset":'
DIGITS = re.compile(rb"[0-9]+")
PONG = b"\x81\x82\x00\x00\x00\x00{}"
CLOSE_1000 = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
RECONNECT_CODES = {3001, 3004, 3008, 3009, 3011, 3012, 3013}


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked (zero key) client frame."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


def _same(conn: Conn) -> Conn:
    return conn


def channel_index(name: bytes) -> int:
    """``stock:123`` -> 123 (0 when the channel has no numeric id)."""
    colon = name.rfind(b":")
    tail = name[colon + 1 :] if colon >= 0 else name
    return int(tail) if tail.isdigit() else 0


class Conn(asyncio.Protocol):
    __slots__ = (
        "attempts",
        "buf",
        "channel",
        "client_id",
        "close_code",
        "closed",
        "count",
        "done",
        "dups",
        "error",
        "first",
        "gaps",
        "host",
        "idx",
        "last",
        "path",
        "port",
        "raw",
        "t_connected",
        "t_open",
        "t_start",
        "t_sub",
        "token",
        "transport",
        "upgraded",
        "w",
    )

    def __init__(
        self, w: WorkerState, idx: int, host: str, port: int, path: str, token: str, channel: str, raw: bool
    ) -> None:
        self.w = w
        self.idx = idx
        self.host, self.port, self.path = host, port, path
        self.token = token
        self.channel = channel
        self.raw = raw
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.t_start = self.t_open = self.t_connected = self.t_sub = 0.0
        self.close_code = 0
        self.attempts = 0
        self.first = self.last = self.gaps = self.dups = self.count = 0
        self.done: asyncio.Future | None = None
        self.client_id = ""
        self.error = ""
        self.closed = False

    # ---- transport events --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16))
        transport.write(  # type: ignore[attr-defined]
            b"GET "
            + self.path.encode()
            + b" HTTP/1.1\r\nHost: "
            + f"{self.host}:{self.port}".encode()
            + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            + key
            + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed:
            self.closed = True
            self.w.on_lost(self)
        self._resolve(False)

    def data_received(self, data: bytes) -> None:
        # The usual read: one whole unmasked text frame (a push) and nothing buffered. Stamped now,
        # as it is read; anything else takes the general path below.
        if self.upgraded and not self.buf and data[0] == 0x81:
            ln = data[1]
            if ln < 126 and len(data) == ln + 2:
                self._text(data[2:], time.time())
                return
            if ln == 126 and len(data) == int.from_bytes(data[2:4], "big") + 4:
                self._text(data[4:], time.time())
                return
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            status = data[:end].split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.error = status.decode(errors="replace")[:80]
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            self.t_open = time.time()
            data = data[end + 4 :]
            if self.raw:
                self.t_connected = self.t_sub = self.t_open
                self.w.on_subscribed(self)
                self._resolve(True)
            else:
                cmd = (
                    orjson.dumps({"id": 1, "connect": {"token": self.token, "name": "bench"}})
                    + b"\n"
                    + orjson.dumps({"id": 2, "subscribe": {"channel": self.channel}})
                )
                self.transport.write(client_frame(cmd))  # type: ignore[union-attr]
            if not data:
                return
        n = len(data)
        i = 0
        now = time.time()
        while n - i >= 2:
            b1 = data[i + 1]
            ln = b1 & 0x7F
            h = 2
            if ln == 126:
                if n - i < 4:
                    break
                ln = int.from_bytes(data[i + 2 : i + 4], "big")
                h = 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln = int.from_bytes(data[i + 2 : i + 10], "big")
                h = 10
            if n - i < h + ln:
                break
            op = data[i] & 0x0F
            payload = data[i + h : i + h + ln]
            i += h + ln
            if op == 1 or op == 2 or op == 0:
                self._text(payload, now)
            elif op == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if self.transport is not None:
                    self.transport.write(b"\x88\x82\x00\x00\x00\x00" + payload[:2])
                    self.transport.close()
                return
            elif op == 9 and self.transport is not None:
                self.transport.write(client_frame(payload, 0xA))
        if i < n:
            self.buf = data[i:]

    # ---- protocol ----------------------------------------------------------------------------

    def _text(self, payload: bytes, now: float) -> None:
        w = self.w
        delivered = 0
        for line in payload.split(b"\n") if b"\n" in payload else (payload,):
            if line.startswith(PUSH_PREFIX):
                end = line.find(b'"', PUSH_PREFIX_LEN)
                j = line.rfind(OFFSET_KEY)
                if j < 0:  # not a publication (e.g. an unsubscribe push)
                    w.other_pushes += 1
                    continue
                digits = DIGITS.match(line, j + 9)
                if digits is None:
                    w.bad_lines += 1
                    continue
                off = int(digits.group())
                name = line[PUSH_PREFIX_LEN:end]
                ch = w.channel_ids.get(name)
                if ch is None:
                    ch = w.channel_ids[name] = channel_index(name)
                last = self.last
                if last == 0:
                    self.first = off
                elif off != last + 1:
                    if off <= last:
                        self.dups += 1
                        continue
                    self.gaps += off - last - 1
                self.last = off
                self.count += 1
                delivered += 1
                if w.record:
                    w.keys.append((ch << 32) | off)
                    w.times.append(now)
            elif line == b"{}":
                if self.transport is not None:
                    self.transport.write(PONG)
                w.pings += 1
            else:
                self._reply(line, now)
        if delivered:
            w.deliveries += delivered
            w.per_second[int(now)] += delivered

    def _reply(self, line: bytes, now: float) -> None:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.w.bad_lines += 1
            return
        if not isinstance(doc, dict):
            return
        rid = doc.get("id")
        if "error" in doc:
            self.error = f"{rid}:{doc['error'].get('code')}"
            self.w.errors[self.error] += 1
            if rid in (1, 2):
                self._resolve(False)
                if self.transport is not None:
                    self.transport.close()
            return
        if rid == 1:
            self.t_connected = now
            self.client_id = doc.get("connect", {}).get("client", "")
        elif rid == 2:
            self.t_sub = now
            self.w.on_subscribed(self)
            self._resolve(True)

    def _resolve(self, ok: bool) -> None:
        done = self.done
        if done is not None and not done.done():
            done.set_result(ok)

    def reset_counters(self) -> None:
        self.first = self.last = self.gaps = self.dups = self.count = 0

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            try:
                self.transport.write(CLOSE_1000)
            finally:
                self.transport.close()


class WorkerState:
    """Everything one worker process holds; driven by commands from the coordinator."""

    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.conns: list[Conn] = []
        self.record = True
        self.keys = array("q")
        self.times = array("d")
        self.channel_ids: dict[bytes, int] = {}
        self.per_second: defaultdict[int, int] = defaultdict(int)
        self.deliveries = 0
        self.pings = 0
        self.other_pushes = 0
        self.bad_lines = 0
        self.subscribed = 0
        self.failed = 0
        self.lost = 0
        self.retries = 0
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.close_codes: defaultdict[int, int] = defaultdict(int)
        self.opening = False

    def on_subscribed(self, conn: Conn) -> None:
        self.subscribed += 1

    def on_lost(self, conn: Conn) -> None:
        if conn.t_sub:
            self.lost += 1
            self.close_codes[conn.close_code or 1006] += 1

    def status(self) -> dict[str, Any]:
        return {
            "wid": self.wid,
            "subscribed": self.subscribed,
            "failed": self.failed,
            "lost": self.lost,
            "deliveries": self.deliveries,
            "retries": self.retries,
            "open": len(self.conns),
            "pings": self.pings,
            "opening": self.opening,
        }

    def reset(self) -> None:
        self.keys = array("q")
        self.times = array("d")
        self.per_second.clear()
        self.deliveries = 0
        self.other_pushes = 0
        for conn in self.conns:
            conn.reset_counters()

    async def open(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Open ``spec['count']`` connections as fast as ``spec['concurrency']`` allows."""
        loop = asyncio.get_running_loop()
        self.opening = True
        self.record = spec.get("record", True)
        targets: list[tuple[str, int]] = [tuple(t) for t in spec["targets"]]  # type: ignore[misc]
        path = spec.get("path", "/connection/websocket")
        raw = spec.get("raw", False)
        channels: list[str] = spec["channels"]
        tokens: list[str] = spec.get("tokens") or []
        first = spec.get("first_index", 0)
        count = spec["count"]
        retries_max = spec.get("max_attempts", 30)
        sem = asyncio.Semaphore(spec.get("concurrency", 200))
        made: list[Conn] = []

        async def one(i: int) -> None:
            g = first + i
            host, port = targets[g % len(targets)]
            token = tokens[i] if tokens else ""
            channel = channels[g % len(channels)]
            async with sem:
                t_start = time.time()
                for attempt in range(retries_max):
                    conn = Conn(self, g, host, port, path, token, channel, raw)
                    conn.t_start = t_start
                    conn.attempts = attempt + 1
                    conn.done = loop.create_future()
                    try:
                        await loop.create_connection(functools.partial(_same, conn), host, port)
                        ok = await asyncio.wait_for(conn.done, spec.get("timeout", 30))
                    except (OSError, TimeoutError):
                        ok = False
                    if ok:
                        made.append(conn)
                        self.conns.append(conn)
                        return
                    code = conn.close_code
                    if conn.transport is not None:
                        conn.transport.abort()
                    if conn.error or (code and code not in RECONNECT_CODES):
                        break  # an error reply or a terminal close: retrying would not help
                    self.retries += 1
                    await asyncio.sleep(min(2.0, 0.05 * (2 ** min(attempt, 5))) * (0.5 + random.random()))
                self.failed += 1
                self.errors[f"failed:{conn.close_code or conn.error or 'io'}"] += 1

        started = time.time()
        await asyncio.gather(*(one(i) for i in range(count)))
        self.opening = False
        return {
            "wid": self.wid,
            "started": started,
            "finished": time.time(),
            "opened": len(made),
            "failed": self.failed,
            "retries": self.retries,
            "t_start": [c.t_start for c in made],
            "t_sub": [c.t_sub for c in made],
            "t_open": [c.t_open for c in made],
            "attempts": [c.attempts for c in made],
            "errors": dict(self.errors),
        }

    def collect(self, bounds: dict[int, tuple[int, int]] | None, raw_arrays: bool) -> dict[str, Any]:
        """Counters (and, with ``raw_arrays``, every (key, time) pair) since the last reset.

        ``bounds``: channel index -> (first, last) offset published in the window; each
        connection then counts what it is missing of that range (gaps, head, tail).
        """
        expected = missing = dups = tail = tail_conns = 0
        per_conn: list[int] = []
        for conn in self.conns:
            per_conn.append(conn.count)
            dups += conn.dups
            if bounds is None:
                continue
            b = bounds.get(channel_index(conn.channel.encode()))
            if b is None:
                continue
            lo, hi = b
            expected += hi - lo + 1
            if conn.count == 0:
                missing += hi - lo + 1
                continue
            missing += conn.gaps + max(0, conn.first - lo) + max(0, hi - conn.last)
            if hi > conn.last:
                tail += hi - conn.last
                tail_conns += 1
        out: dict[str, Any] = {
            "wid": self.wid,
            "deliveries": self.deliveries,
            "expected": expected,
            "missing": missing,
            "dups": dups,
            "tail_missing": tail,
            "tail_conns": tail_conns,
            "per_second": dict(self.per_second),
            "per_conn": per_conn,
            "lost": self.lost,
            "close_codes": dict(self.close_codes),
            "pings": self.pings,
            "other_pushes": self.other_pushes,
            "bad_lines": self.bad_lines,
            "errors": dict(self.errors),
        }
        if raw_arrays:
            out["keys"] = self.keys.tobytes()
            out["times"] = self.times.tobytes()
        return out

    async def close_all(self) -> int:
        n = len(self.conns)
        for conn in self.conns:
            conn.close()
        self.conns = []
        await asyncio.sleep(0.2)
        self.subscribed = self.failed = self.lost = self.retries = 0
        self.errors.clear()
        self.close_codes.clear()
        return n


def mint_tokens(keys_dir: str, users: list[str], ttl: int = 3600) -> list[str]:
    from flashline_auth.dev import load_dev_signing_key
    from flashline_auth.minting import TokenMinter

    minter = TokenMinter(load_dev_signing_key(keys_dir, "identity"), audience="flashline", ttl_seconds=ttl)
    return [minter.mint({"sub": u, "role": "customer", "name": u})[0] for u in users]


def worker_main(wid: int, pipe: Any) -> None:
    """Entry point of a worker process: serve the coordinator's commands until ``exit``."""
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(_serve(wid, pipe))


async def _serve(wid: int, pipe: Any) -> None:
    state = WorkerState(wid)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    tasks: set[asyncio.Task] = set()

    async def handle(msg: dict[str, Any]) -> None:
        cmd = msg["cmd"]
        try:
            if cmd == "open":
                spec = msg["spec"]
                if spec.get("mint_users"):
                    spec["tokens"] = mint_tokens(spec["keys_dir"], spec["mint_users"])
                    pipe.send({"id": msg["id"], "minted": True, "partial": True})
                result: Any = await state.open(spec)
            elif cmd == "status":
                result = state.status()
            elif cmd == "reset":
                state.reset()
                result = True
            elif cmd == "record":
                state.record = msg["on"]
                result = True
            elif cmd == "collect":
                result = state.collect(msg.get("bounds"), msg.get("raw", True))
            elif cmd == "close_all":
                result = await state.close_all()
            elif cmd == "exit":
                result = True
                if not stop.done():
                    stop.set_result(None)
            else:
                result = {"error": f"unknown command {cmd}"}
            pipe.send({"id": msg["id"], "result": result})
        except Exception as exc:  # noqa: BLE001 - report it, keep serving
            pipe.send({"id": msg["id"], "error": repr(exc)})

    def reader() -> None:  # a thread: uvloop's add_reader would make the pipe non-blocking
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(finish)
                return
            loop.call_soon_threadsafe(spawn, msg)
            if msg.get("cmd") == "exit":
                return

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    def spawn(msg: dict[str, Any]) -> None:
        task = loop.create_task(handle(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    import threading

    threading.Thread(target=reader, daemon=True).start()
    await stop
    for conn in state.conns:
        conn.close()
