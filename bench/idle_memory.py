"""Scenario 4, idle memory: gateway RSS with 0 and with C idle subscribed clients -> KiB per connection.

A fresh gateway; clients (each its own JWT user, subscribed to one of 100 ``stock:`` channels)
are added in ``--memory-steps`` equal steps, RSS is read after each settles; KiB per connection
is the least-squares slope of RSS over connections (the memory-vs-connections plot).

    python -m bench.idle_memory [--clients 10000]
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import numpy as np

from bench.core.runner import Ctx, open_clients

NAME = "idle_memory"
STEPS = 5


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    env, load = ctx.env, ctx.load
    assert env is not None and load is not None
    clients = ctx.cap_clients(p.clients)
    gw = env.start_gateways(1, conflation_ms=0)[0]
    chans = ctx.channels(100)

    async def rss_now() -> float:
        await asyncio.sleep(2.0)
        samples = []
        for _ in range(3):
            samples.append(gw.rss())
            await asyncio.sleep(0.3)
        return statistics.median(samples) / 2**20

    steps = [{"connections": 0, "rss_mb": round(await rss_now(), 2)}]
    try:
        per = clients // STEPS
        for i in range(STEPS):
            n = per if i < STEPS - 1 else clients - per * (STEPS - 1)
            first = i * per
            await open_clients(
                ctx,
                f"idle memory {first + n}/{clients}",
                n,
                targets=[("127.0.0.1", gw.port)],
                channels=[f"stock:{c}" for c in chans],
                users=[f"bench-idle-{j}" for j in range(first, first + n)],
                concurrency=p.storm_concurrency,
                record=False,
            )
            st = await load.status()
            steps.append({"connections": st["subscribed"], "rss_mb": round(await rss_now(), 2)})
        xs = np.array([s["connections"] for s in steps], dtype=float)
        ys = np.array([s["rss_mb"] for s in steps], dtype=float)
        slope = float(np.polyfit(xs, ys, 1)[0]) if len(xs) > 1 else 0.0
        r = {
            "clients": int(xs[-1]),
            "steps": steps,
            "rss_0_mb": steps[0]["rss_mb"],
            "rss_c_mb": steps[-1]["rss_mb"],
            "kib_per_connection": round(slope * 1024, 2),
            "kib_per_connection_endpoints": round((ys[-1] - ys[0]) * 1024 / max(1.0, xs[-1]), 2),
        }
        ctx.log(
            f"  idle memory: {r['rss_0_mb']} MB -> {r['rss_c_mb']} MB with {r['clients']} connections: "
            f"{r['kib_per_connection']} KiB per connection"
        )
        return r
    finally:
        await load.close_all()


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
