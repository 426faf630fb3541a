"""Figures from raw observations: latency joins and percentiles, rates, CPU and memory samplers."""

from __future__ import annotations

import asyncio
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
