"""Parameters, the run context (environment, load tool, progress) and the shared fan-out measurement."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.core import stats
from bench.core.env import BenchEnv
from bench.core.loadgen import LoadGen
from bench.core.sdk import SdkWatcher


def _ints(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


@dataclass
class Params:
    """Every knob; CLI flag ``--name-with-dashes`` or environment ``BENCH_NAME`` (flag wins)."""

    clients: int = 10_000  # storm, idle memory, many-channel ceiling, scale-out
    fanout_clients: str = "5000,10000"  # one-channel ceiling and the floor, at each of these
    e2e_clients: str = "5000,10000"  # scenario 1 (full path)
    e2e_rate: float = 5.0  # orders (so stock publications) per second in scenario 1
    latency_clients: int = 1000  # gateway latency target: 1,000 x 20/s
    latency_rate: float = 20.0
    latency_rounds: int = 3  # latency point runs, each on a fresh gateway; the median round (by p99) is reported
    many_channels: int = 100
    duration: float = 20.0  # measurement window of each fan-out run, s
    max_backlog: int = 20  # ceiling: publications the gateway may be behind before the injector waits (at least)
    max_backlog_deliveries: int = 200_000  # ... or this many deliveries' worth, whichever is more
    storm_concurrency: int = 500  # connects in flight (all workers together)
    storm_rounds: int = 3  # connect storms in scenario 3; the median round is reported
    idp_algorithm: str = "RS256"  # connection tokens: RS256 (identity providers' default), ES256 or EdDSA
    buyers: int = 100  # hot SKU: concurrent buyers
    hot_stock: int = 20_000  # more than buyers can order in hot_duration: the duration bounds the run, not a sell-out
    hot_duration: float = 20.0
    gateways: str = "1,2,3"  # scale-out
    scale_clients: int = 10_000
    scale_duration: float = 12.0
    conflation_clients: int = 1000
    conflation_rate: float = 500.0
    conflation_duration: float = 10.0
    workers: int = 2  # load processes
    only: str = ""  # comma list of scenarios to run (default all)
    quick: bool = False
    results: str = "bench/results"
    sdk_check: bool = True

    QUICK = {
        "clients": 1000,
        "fanout_clients": "500,1000",
        "e2e_clients": "500",
        "latency_clients": 500,
        "duration": 6.0,
        "buyers": 20,
        "hot_stock": 400,
        "hot_duration": 6.0,
        "gateways": "1,2",
        "scale_clients": 1000,
        "scale_duration": 5.0,
        "conflation_clients": 200,
        "conflation_duration": 4.0,
        "storm_concurrency": 200,
        "storm_rounds": 1,
        "latency_rounds": 1,
        "many_channels": 20,
    }

    @classmethod
    def parse(cls, argv: list[str] | None = None, description: str = "") -> Params:
        parser = argparse.ArgumentParser(description=description)
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.type in ("bool", bool):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
            else:
                parser.add_argument(flag, default=None, type=str)
        args = parser.parse_args(argv)
        values: dict[str, Any] = {}
        quick = args.quick if args.quick is not None else os.environ.get("BENCH_QUICK", "") in ("1", "true", "yes")
        for f in dataclasses.fields(cls):
            raw = getattr(args, f.name)
            if raw is None:
                raw = os.environ.get("BENCH_" + f.name.upper())
            if raw is None and quick and f.name in cls.QUICK:
                raw = cls.QUICK[f.name]
            if raw is None:
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = str(raw)
        values["quick"] = quick
        return cls(**values)

    def ints(self, name: str) -> list[int]:
        return _ints(getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft, hard
    return hard, hard


@dataclass
class Ctx:
    params: Params
    console: Console = field(default_factory=lambda: Console(width=None if _tty() else 150))
    env: BenchEnv | None = None
    load: LoadGen | None = None
    progress: Progress | None = None
    _next_channel: int = 1000

    def start(self) -> None:
        nofile = raise_nofile()[0]
        # each side of a connection holds a descriptor: the load workers and the gateway each need C + slack
        self.nofile = nofile
        self.env = BenchEnv(idp_algorithm=self.params.idp_algorithm)
        self.load = LoadGen(self.params.workers)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()

    async def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.load is not None:
            await self.load.shutdown()
        if self.env is not None:
            self.env.close()

    def channels(self, n: int) -> list[int]:
        first = self._next_channel
        self._next_channel += n + 10
        return list(range(first, first + n))

    def cap_clients(self, c: int) -> int:
        """C is limited by the descriptors a process may hold (both ends live on this machine)."""
        return min(c, max(100, self.nofile - 500))

    def log(self, text: str) -> None:
        self.console.print(text)

    @contextlib.contextmanager
    def phase(self, description: str, total: float) -> Iterator[Callable[..., None]]:
        assert self.progress is not None
        task = self.progress.add_task(description, total=total, info="")

        def update(completed: float | None = None, info: str = "") -> None:
            kw: dict[str, Any] = {"info": info}
            if completed is not None:
                kw["completed"] = completed
            self.progress.update(task, **kw)  # type: ignore[union-attr]

        try:
            yield update
        finally:
            self.progress.update(task, completed=total)
            self.progress.stop_task(task)


async def open_clients(
    ctx: Ctx,
    label: str,
    count: int,
    *,
    targets: list[tuple[str, int]],
    channels: list[str],
    raw: bool = False,
    users: list[str] | None = None,
    concurrency: int = 500,
    record: bool = True,
) -> list[dict[str, Any]]:
    """Open connections with a progress bar; raises if many fail."""
    assert ctx.load is not None and ctx.env is not None
    with ctx.phase(f"{label}: connecting {count}", count) as update:
        task = asyncio.ensure_future(
            ctx.load.open(
                count,
                targets=targets,
                channels=channels,
                raw=raw,
                users=users,
                keys_dir=str(ctx.env.keys_dir),
                concurrency=concurrency,
                record=record,
            )
        )
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            st = await ctx.load.status()
            update(st["subscribed"], f"{st['subscribed']} subscribed, {st['failed']} failed, {st['retries']} retries")
        return task.result()


async def measure_fanout(
    ctx: Ctx,
    label: str,
    *,
    duration: float,
    publish: Callable[[float], Awaitable[Any]],
    sent: Callable[[], dict[int, float]],
    bounds: Callable[[], dict[int, tuple[int, int]]],
    server_cpu: Callable[[], float],
    server_rss: Callable[[], int] | None = None,
    sdk: SdkWatcher | None = None,
    drain_max: float = 15.0,
) -> dict[str, Any]:
    """Run ``publish(duration)`` against already-open subscribers and measure everything.

    The CPU window spans the publications and their drain; deliveries/s is the median of the
    per-second counts of the window (its first and last, partial, seconds left out).
    """
    load = ctx.load
    assert load is not None
    await asyncio.sleep(0.5)
    await load.reset()
    if sdk is not None:
        sdk.reset()
    sampler = stats.Sampler(
        {"server_cpu": server_cpu, "load_cpu": load.cpu_seconds, **({"server_rss": server_rss} if server_rss else {})}
    )
    t0 = time.time()
    cpu_s0, cpu_l0 = server_cpu(), load.cpu_seconds()
    sampler.start()
    with ctx.phase(f"{label}", duration) as update:
        pub = asyncio.ensure_future(publish(duration))
        last = 0
        while not pub.done():
            await asyncio.wait({pub}, timeout=0.5)
            st = await load.status()
            el = time.time() - t0
            update(
                min(el, duration),
                f"{st['deliveries']:,} deliveries, {st['deliveries'] / max(el, 0.1):,.0f}/s, {st['lost']} dropped",
            )
            last = st["deliveries"]
        published = pub.result()
        # drain: until nothing new arrives for a second
        quiet_since = time.time()
        drain_start = time.time()
        while time.time() - drain_start < drain_max:
            await asyncio.sleep(0.25)
            st = await load.status()
            if st["deliveries"] != last:
                last = st["deliveries"]
                quiet_since = time.time()
            elif time.time() - quiet_since > 1.0:
                break
    t1 = time.time()
    cpu_s1, cpu_l1 = server_cpu(), load.cpu_seconds()
    await sampler.stop()
    got = await load.collect(bounds(), raw=True)
    lat, unmatched = stats.join_latency(got["keys"], got["times"], sent())
    deliveries = got["deliveries"]
    rate = stats.steady_rate(got["per_second"])
    result: dict[str, Any] = {
        "published": published if isinstance(published, int) else None,
        "deliveries": deliveries,
        "expected": got["expected"],
        "missing": got["missing"],
        "loss": (got["missing"] / got["expected"]) if got["expected"] else None,
        "duplicates": got["dups"],
        "clients_missing_latest": got["tail_conns"],
        "dropped_connections": got["lost_connections"],
        "close_codes": got["close_codes"],
        "deliveries_per_s": rate["median_per_s"],
        "deliveries_per_s_mean": rate["mean_per_s"],
        "deliveries_per_s_peak": rate["peak_per_s"],
        "window_s": round(t1 - t0, 2),
        "server_cpu_s": round(cpu_s1 - cpu_s0, 3),
        "load_cpu_s": round(cpu_l1 - cpu_l0, 3),
        "server_cpu_us_per_delivery": stats.per_us(cpu_s1 - cpu_s0, deliveries),
        "load_cpu_us_per_delivery": stats.per_us(cpu_l1 - cpu_l0, deliveries),
        "server_cpu_pct": round(100 * (cpu_s1 - cpu_s0) / max(t1 - t0, 1e-6), 1),
        "load_cpu_pct": round(100 * (cpu_l1 - cpu_l0) / max(t1 - t0, 1e-6), 1),
        "latency": stats.latency_summary(lat),
        "latency_unmatched": unmatched,
        "latency_hist": stats.latency_histogram(lat),
        "latency_split": stats.spread(got["keys"], got["times"], sent()),
        "series": {
            "deliveries_per_s": stats.series(got["per_second"], t0),
            "server_cpu_pct": sampler.cpu_percent_series("server_cpu", t0),
            "load_cpu_pct": sampler.cpu_percent_series("load_cpu", t0),
        },
    }
    if sdk is not None:
        b = bounds()
        lo_hi = next(iter(b.values())) if len(b) == 1 else None
        chan_b = None
        for chan, (lo, hi) in b.items():
            if sdk.channel.endswith(f":{chan}"):
                chan_b = (lo, hi)
        lo_hi = chan_b or lo_hi
        result["sdk_check"] = sdk.verdict(*lo_hi) if lo_hi else {"ok": False, "reason": "no publications"}
    return result


def stage_brief(stages: dict[str, Any]) -> str:
    """``name p50/p99`` of each stage that counted something."""
    return ", ".join(f"{name} {s['p50_ms']}/{s['p99_ms']}" for name, s in stages.items() if s.get("count"))


def brief(r: dict[str, Any]) -> str:
    lat = r.get("latency", {})
    loss = r.get("loss")
    return (
        f"{r['deliveries_per_s']:,.0f} deliveries/s, server {r['server_cpu_us_per_delivery']} us/delivery "
        f"({r['server_cpu_pct']}% CPU), load tool {r['load_cpu_pct']}% CPU, p50/p99/max "
        f"{lat.get('p50_ms')}/{lat.get('p99_ms')}/{lat.get('max_ms')} ms, loss "
        f"{'-' if loss is None else f'{loss:.4%}'}, dropped {r['dropped_connections']}"
    )
