"""Scenario 3, connect storm: C clients connect with their own JWT and subscribe, as fast as possible.

Every client is a distinct user (a user token minted before the clock starts, signed with
``--idp-algorithm``: RS256 by default, as identity providers sign) that
connects and subscribes to one of 100 ``stock:`` channels in one batched frame; at most
``--storm-concurrency`` handshakes are in flight. The gateway's admission rate limit is raised
for the run (it would otherwise meter the storm at 500/s by design, see the README).
Reports connections/s, time until all are subscribed, failures and retries, and gateway CPU per
authenticated connect + subscribe.

    python -m bench.connect_storm [--clients 10000] [--storm-concurrency 500] [--storm-rounds 3]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.core.runner import Ctx, open_clients

NAME = "connect_storm"


async def storm_run(ctx: Ctx, label: str, *, clients: int, gateways: int = 1) -> dict[str, Any]:
    p = ctx.params
    env, load = ctx.env, ctx.load
    assert env is not None and load is not None
    gws = env.start_gateways(gateways, conflation_ms=0)
    chans = ctx.channels(100)
    users = [f"bench-user-{i}" for i in range(clients)]
    try:
        times0 = [g.ps.cpu_times() for g in gws]
        rss0 = sum(g.rss() for g in gws)
        parts = await open_clients(
            ctx,
            label,
            clients,
            targets=[("127.0.0.1", g.port) for g in gws],
            channels=[f"stock:{c}" for c in chans],
            users=users,
            concurrency=p.storm_concurrency,
        )
        times1 = [g.ps.cpu_times() for g in gws]
        cpu0, cpu1 = (sum(t.user + t.system for t in times) for times in (times0, times1))
        sys0, sys1 = (sum(t.system for t in times) for times in (times0, times1))
        t_start = np.concatenate([np.array(x["t_start"]) for x in parts])
        t_sub = np.concatenate([np.array(x["t_sub"]) for x in parts])
        attempts = np.concatenate([np.array(x["attempts"]) for x in parts])
        opened = int(t_sub.size)
        failed = sum(x["failed"] for x in parts)
        errors: dict[str, int] = {}
        for x in parts:
            for k, v in x["errors"].items():
                errors[k] = errors.get(k, 0) + v
        begin = float(t_start.min()) if opened else time.time()
        span = float(t_sub.max() - begin) if opened else 0.0
        each = (t_sub - t_start) * 1000 if opened else np.empty(0)
        hist_t = np.sort(t_sub - begin) if opened else np.empty(0)
        step = max(1, opened // 200)
        result = {
            "clients": clients,
            "gateways": gateways,
            "opened": opened,
            "failed": failed,
            "retries": int((attempts - 1).sum()) if opened else 0,
            "errors": errors,
            "time_to_all_subscribed_s": round(span, 3),
            "connects_per_s": round(opened / span, 1) if span else 0.0,
            "server_cpu_s": round(cpu1 - cpu0, 3),
            "server_cpu_us_per_connect": round((cpu1 - cpu0) * 1e6 / opened, 1) if opened else None,
            # the kernel's share: on loopback a write also runs the receiving side's TCP stack
            "server_system_cpu_share": round((sys1 - sys0) / (cpu1 - cpu0), 2) if cpu1 > cpu0 else None,
            "connect_latency_ms": {
                k: round(float(np.percentile(each, q)), 1)
                for k, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
            }
            if opened
            else {},
            "gateway_rss_mb_before": round(rss0 / 2**20, 1),
            "gateway_rss_mb_after": round(sum(g.rss() for g in gws) / 2**20, 1),
            "subscribed_over_time": [[round(float(hist_t[i]), 3), i + 1] for i in range(0, opened, step)],
            "concurrency": p.storm_concurrency,
        }
        return result
    finally:
        await load.close_all()


async def run(ctx: Ctx) -> dict[str, Any]:
    """``--storm-rounds`` storms, each on a fresh gateway; the median round (by CPU per connect) is
    the figure, because one storm's CPU varies by a third on this shared machine."""
    c = ctx.cap_clients(ctx.params.clients)
    rounds = max(1, ctx.params.storm_rounds)
    runs = []
    for n in range(1, rounds + 1):
        r = await storm_run(ctx, f"connect storm C={c} ({n}/{rounds})", clients=c)
        ctx.log(
            f"  storm C={c} round {n}: {r['connects_per_s']:,.0f} connects/s, "
            f"all subscribed in {r['time_to_all_subscribed_s']} s, "
            f"{r['server_cpu_us_per_connect']} us gateway CPU per connect, failed {r['failed']}, "
            f"retries {r['retries']}, p99 connect {r['connect_latency_ms'].get('p99')} ms"
        )
        runs.append(r)
    ranked = sorted(runs, key=lambda r: r["server_cpu_us_per_connect"] or float("inf"))
    median = dict(ranked[(len(ranked) - 1) // 2])
    median["rounds"] = [
        {k: r[k] for k in ("server_cpu_us_per_connect", "connects_per_s", "time_to_all_subscribed_s", "failed")}
        for r in runs
    ]
    return median


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
