"""Figures from raw observations: latency joins and percentiles, rates, CPU and memory samplers."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np


def join_latency(keys: array, times: array, sent: dict[int, float]) -> tuple[np.ndarray, int]:
    """Receive time minus publication time for every delivery whose key is known; (latencies s, unmatched)."""
    if not keys or not sent:
        return np.empty(0), len(keys)
    k = np.frombuffer(keys, dtype=np.int64)
    t = np.frombuffer(times, dtype=np.float64)
    sk = np.fromiter(sent.keys(), dtype=np.int64, count=len(sent))
    sv = np.fromiter(sent.values(), dtype=np.float64, count=len(sent))
    order = np.argsort(sk)
    sk, sv = sk[order], sv[order]
    idx = np.clip(np.searchsorted(sk, k), 0, len(sk) - 1)
    hit = sk[idx] == k
    return t[hit] - sv[idx[hit]], int((~hit).sum())


def latency_summary(lat: np.ndarray) -> dict[str, Any]:
    if lat.size == 0:
        return {"count": 0}
    ms = lat * 1000.0
    p = np.percentile(ms, [50, 90, 99, 99.9])
    return {
        "count": int(ms.size),
        "p50_ms": round(float(p[0]), 2),
        "p90_ms": round(float(p[1]), 2),
        "p99_ms": round(float(p[2]), 2),
        "p999_ms": round(float(p[3]), 2),
        "max_ms": round(float(ms.max()), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "min_ms": round(float(ms.min()), 3),
    }


def latency_histogram(lat: np.ndarray, bins: int = 60) -> dict[str, list[float]]:
    """Log-spaced histogram (ms) for the JSON and the plots, so the raw arrays need not be kept."""
    if lat.size == 0:
        return {"edges_ms": [], "counts": []}
    ms = np.maximum(lat * 1000.0, 0.01)
    edges = np.logspace(np.log10(max(0.01, ms.min())), np.log10(ms.max() * 1.001 + 0.01), bins + 1)
    counts, edges = np.histogram(ms, bins=edges)
    return {"edges_ms": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def steady_rate(per_second: dict[int, int]) -> dict[str, float]:
    """Median and mean of the per-second counts, the first and last (partial) seconds left out."""
    if not per_second:
        return {"median_per_s": 0.0, "mean_per_s": 0.0, "peak_per_s": 0.0}
    secs = sorted(per_second)
    full = [per_second.get(s, 0) for s in range(secs[0], secs[-1] + 1)]
    core = full[1:-1] if len(full) > 2 else full
    return {
        "median_per_s": float(statistics.median(core)),
        "mean_per_s": round(float(statistics.mean(core)), 1),
        "peak_per_s": float(max(full)),
    }


def series(per_second: dict[int, int], t0: float) -> list[list[float]]:
    if not per_second:
        return []
    secs = sorted(per_second)
    return [[round(s - t0, 1), per_second.get(s, 0)] for s in range(secs[0], secs[-1] + 1)]


class Sampler:
    """Samples callables (CPU seconds, RSS, counters) every ``interval`` s into a time series."""

    def __init__(self, probes: dict[str, Callable[[], float]], interval: float = 0.5) -> None:
        self.probes = probes
        self.interval = interval
        self.rows: list[dict[str, float]] = []
        self._task: asyncio.Task | None = None

    def sample(self) -> dict[str, float]:
        row = {"t": time.time()}
        for name, fn in self.probes.items():
            try:
                row[name] = float(fn())
            except Exception:  # noqa: BLE001 - a dead process reads as nothing
                row[name] = float("nan")
        self.rows.append(row)
        return row

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.sample()

    def cpu_percent_series(self, key: str, t0: float) -> list[list[float]]:
        out = []
        for a, b in zip(self.rows, self.rows[1:], strict=False):
            dt = b["t"] - a["t"]
            if dt > 0:
                out.append([round(b["t"] - t0, 2), round(100.0 * (b[key] - a[key]) / dt, 1)])
        return out


def per_us(cpu_seconds: float, count: int) -> float | None:
    return round(cpu_seconds * 1e6 / count, 2) if count else None


def _summary(values: list[float] | np.ndarray) -> dict[str, Any]:
    ms = np.asarray(values, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"count": 0}
    p50, p99 = np.percentile(ms, [50, 99])
    return {
        "count": int(ms.size),
        "p50_ms": round(float(p50), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def _between(start: dict[int, float], end: dict[int, float]) -> dict[str, Any]:
    return _summary([end[k] - start[k] for k in start.keys() & end.keys()])


def _first_last(keys: array, times: array) -> tuple[np.ndarray, ...]:
    """Deliveries sorted by publication key: (keys, times, unique keys, their starts, first and last receive time)."""
    k = np.frombuffer(keys, dtype=np.int64)
    t = np.frombuffer(times, dtype=np.float64)
    order = np.argsort(k, kind="stable")
    k, t = k[order], t[order]
    uniq, starts = np.unique(k, return_index=True)
    return k, t, uniq, starts, np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts)


def spread(keys: array, times: array, sent: dict[int, float]) -> dict[str, Any]:
    """Per publication: send -> first client (the hop) and first -> last client (the fan-out's spread).

    A p99 far above hop + spread is noise on the way (a stalled process), not the fan-out itself.
    """
    if not keys or not sent:
        return {}
    _, _, uniq, _, first, last = _first_last(keys, times)
    t0 = np.array([sent.get(int(key), np.nan) for key in uniq])
    known = ~np.isnan(t0)
    return {
        "send_to_first_client": _summary((first - t0)[known]),
        "first_to_last_client": _summary((last - first)[known]),
    }


def stages(keys: array, times: array, stamps: dict[str, dict[int, float]]) -> dict[str, Any]:
    """Where a full-path publication's time goes: per publication, p50/p99/max of each stage.

    ``stamps``: key -> time at ``published`` (the producer's ``published_at``), ``committed``
    (its commit NOTIFY heard), ``routed`` (on the push exchange), ``received`` (read from the
    stream by a consumer like the gateway); the load tool's reads close it: first and last client
    per publication, and ``de_stream_consumer_to_client_all`` over every delivery (the fan-out's
    share of the end-to-end percentiles). ``per_publication``: each one's marks, ms after
    ``published_at``.
    """
    published, committed = stamps.get("published", {}), stamps.get("committed", {})
    routed, received = stamps.get("routed", {}), stamps.get("received", {})
    out: dict[str, Any] = {
        "a_published_to_commit": _between(published, committed),
        "b_commit_to_exchange": _between(committed, routed),
        "c_exchange_to_stream_consumer": _between(routed, received),
        "abc_published_to_stream_consumer": _between(published, received),
    }
    if not keys or not received:
        return out
    k, t, uniq, starts, first, last = _first_last(keys, times)
    tap = np.array([received.get(int(key), np.nan) for key in uniq])
    known = ~np.isnan(tap)
    out["d_stream_consumer_to_first_client"] = _summary((first - tap)[known])
    out["de_first_to_last_client"] = _summary((last - first)[known])
    per_delivery = t - np.repeat(tap, np.diff(np.append(starts, k.size)))
    out["de_stream_consumer_to_client_all"] = _summary(per_delivery[~np.isnan(per_delivery)])
    rows = []
    for key, lo, hi in zip(uniq.tolist(), first.tolist(), last.tolist(), strict=True):
        t0 = published.get(key)
        if t0 is not None:
            marks = (committed.get(key), routed.get(key), received.get(key), lo, hi)
            rows.append([key & 0xFFFFFFFF, *(None if m is None else round(1000 * (m - t0), 2) for m in marks)])
    out["per_publication"] = {"columns": ["offset", "committed", "routed", "received", "first", "last"], "ms": rows}
    return out


def histogram_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """p50/p99 (ms, interpolated within buckets) of what a Prometheus histogram observed between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return {"count": 0}
    out: dict[str, Any] = {"count": int(total)}
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        rank, lower, below = q * total, 0.0, 0.0
        for bound, cum in zip(bounds, counts, strict=True):
            if cum >= rank:
                upper = bound if bound != float("inf") else lower
                share = (rank - below) / (cum - below) if cum > below else 1.0
                out[name] = round(1000 * (lower + (upper - lower) * share), 2)
                break
            lower, below = bound, cum
    return out


def _sched(pid: int) -> tuple[float, float]:
    """(CPU s, run-queue wait s) of a process, all threads (``/proc/<pid>/task/*/schedstat``)."""
    cpu = wait = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns, _ = f.read().split()
        except (OSError, ValueError):
            continue
        cpu += int(run_ns) / 1e9
        wait += int(wait_ns) / 1e9
    return cpu, wait


def _cpu_ticks() -> list[int]:
    """The all-cores line of ``/proc/stat``: user nice system idle iowait irq softirq steal (ticks)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


class ProcessClock:
    """CPU and run-queue wait of named process groups over a window: who ran, and who waited for a core.

    A writer that waits for a core while its clients' reads take it is the shared-cores bound,
    and per-order CPU of the rest (services, broker, database) is load the fan-out shares them with.
    Groups are looked up at start and stop (a process that comes or goes in between is miscounted).
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, tuple[float, float]] = {}
        self._stat: list[int] = []

    def _now(self) -> dict[str, tuple[float, float]]:
        out = {}
        for name, pids in self.groups.items():
            samples = [_sched(pid) for pid in pids()]
            out[name] = (sum(s[0] for s in samples), sum(s[1] for s in samples))
        return out

    def start(self) -> None:
        self._start = self._now()
        self._stat = _cpu_ticks()

    def stop(self, per: int) -> dict[str, Any]:
        """CPU and wait (ms) per unit of ``per`` (e.g. per publication) of each group.

        ``machine``: idle and steal (the host running someone else) of all cores, the same way.
        """
        end = self._now()
        ticks = [b - a for a, b in zip(self._stat, _cpu_ticks(), strict=True)]
        hz = os.sysconf("SC_CLK_TCK")
        out: dict[str, Any] = {
            "machine": {
                "idle_ms": round(1000 * (ticks[3] + ticks[4]) / hz / max(per, 1), 2),
                "steal_ms": round(1000 * ticks[7] / hz / max(per, 1), 2),
            }
        }
        for name, (cpu, wait) in end.items():
            cpu0, wait0 = self._start.get(name, (cpu, wait))
            out[name] = {
                "cpu_ms": round(1000 * (cpu - cpu0) / max(per, 1), 2),
                "wait_ms": round(1000 * (wait - wait0) / max(per, 1), 2),
            }
        return out


def fixed_pids(pids: list[int]) -> Callable[[], list[int]]:
    return lambda: pids


def pids_named(*names: str) -> Callable[[], list[int]]:
    """Every running process whose name is one of ``names`` (the broker and database serve everyone)."""
    import psutil

    def find() -> list[int]:
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names]

    return find
