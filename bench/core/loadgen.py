"""The coordinator's side of the load tool: several worker processes, driven over pipes.

``LoadGen.open`` spreads connections over the workers (and over the targets, round-robin by
connection index), ``collect`` gathers counters and the raw ``(key, time)`` arrays, and
``cpu_seconds`` reports the workers' own CPU (the load tool's cost, reported with every figure).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import threading
from array import array
from typing import Any

import psutil

from bench.core.wsload import worker_main


class LoadGen:
    def __init__(self, workers: int) -> None:
        self.n = max(1, workers)
        ctx = mp.get_context("spawn")
        self._pipes = []
        self._procs = []
        for wid in range(self.n):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(wid, theirs), daemon=True, name=f"bench-load-{wid}")
            proc.start()
            theirs.close()
            self._pipes.append(ours)
            self._procs.append(proc)
        self.pids = [p.pid for p in self._procs]
        self._ps = [psutil.Process(pid) for pid in self.pids]
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        for pipe in self._pipes:
            threading.Thread(target=self._reader, args=(pipe, loop), daemon=True).start()

    def _reader(self, pipe: Any, loop: asyncio.AbstractEventLoop) -> None:
        """A thread per worker pipe (blocking reads of possibly large messages)."""
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                return
            if msg.get("partial"):
                continue
            loop.call_soon_threadsafe(self._deliver, msg)

    def _deliver(self, msg: dict[str, Any]) -> None:
        fut = self._waiting.pop(msg["id"], None)
        if fut is not None and not fut.done():
            if "error" in msg:
                fut.set_exception(RuntimeError(f"load worker: {msg['error']}"))
            else:
                fut.set_result(msg["result"])

    async def _call(self, wid: int, cmd: str, **kw: Any) -> Any:
        self._attach()
        assert self._loop is not None
        mid = next(self._ids)
        fut = self._loop.create_future()
        self._waiting[mid] = fut
        self._pipes[wid].send({"id": mid, "cmd": cmd, **kw})
        return await fut

    async def all(self, cmd: str, **kw: Any) -> list[Any]:
        return await asyncio.gather(*(self._call(w, cmd, **kw) for w in range(self.n)))

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self._ps:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def rss_bytes(self) -> int:
        return sum(p.memory_info().rss for p in self._ps if p.is_running())

    async def open(
        self,
        count: int,
        *,
        targets: list[tuple[str, int]],
        channels: list[str],
        concurrency: int = 400,
        raw: bool = False,
        users: list[str] | None = None,
        keys_dir: str | None = None,
        record: bool = True,
        path: str = "/connection/websocket",
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Open ``count`` connections (``users``: one JWT each, minted in the workers before the clock starts)."""
        per = [count // self.n + (1 if w < count % self.n else 0) for w in range(self.n)]
        calls = []
        first = 0
        for w in range(self.n):
            spec: dict[str, Any] = {
                "count": per[w],
                "first_index": first,
                "targets": targets,
                "channels": channels,
                "raw": raw,
                "concurrency": max(1, concurrency // self.n),
                "record": record,
                "path": path,
                "timeout": timeout,
            }
            if users:
                spec["mint_users"] = users[first : first + per[w]]
                spec["keys_dir"] = keys_dir
            calls.append(self._call(w, "open", spec=spec))
            first += per[w]
        return await asyncio.gather(*calls)

    async def status(self) -> dict[str, int]:
        parts = await self.all("status")
        keys = ("subscribed", "failed", "lost", "deliveries", "retries", "open", "pings")
        return {k: sum(p[k] for p in parts) for k in keys}

    async def reset(self) -> None:
        await self.all("reset")

    async def collect(self, bounds: dict[int, tuple[int, int]] | None = None, raw: bool = True) -> dict[str, Any]:
        parts = await self.all("collect", bounds=bounds, raw=raw)
        per_second: dict[int, int] = {}
        close_codes: dict[int, int] = {}
        errors: dict[str, int] = {}
        keys = array("q")
        times = array("d")
        per_conn: list[int] = []
        for p in parts:
            for s, c in p["per_second"].items():
                per_second[s] = per_second.get(s, 0) + c
            for code, c in p["close_codes"].items():
                close_codes[code] = close_codes.get(code, 0) + c
            for e, c in p["errors"].items():
                errors[e] = errors.get(e, 0) + c
            per_conn.extend(p["per_conn"])
            if raw:
                keys.frombytes(p["keys"])
                times.frombytes(p["times"])
        return {
            "deliveries": sum(p["deliveries"] for p in parts),
            "expected": sum(p["expected"] for p in parts),
            "missing": sum(p["missing"] for p in parts),
            "dups": sum(p["dups"] for p in parts),
            "tail_missing": sum(p["tail_missing"] for p in parts),
            "tail_conns": sum(p["tail_conns"] for p in parts),
            "lost_connections": sum(p["lost"] for p in parts),
            "bad_lines": sum(p["bad_lines"] for p in parts),
            "per_second": per_second,
            "close_codes": close_codes,
            "errors": errors,
            "per_conn": per_conn,
            "keys": keys,
            "times": times,
        }

    async def close_all(self) -> int:
        return sum(await self.all("close_all"))

    async def shutdown(self) -> None:
        try:
            await asyncio.wait_for(self.all("exit"), 5)
        except (TimeoutError, RuntimeError, OSError, BrokenPipeError):
            pass
        for proc in self._procs:
            proc.join(3)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
