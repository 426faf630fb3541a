"""Scenario 5, hot SKU checkout: concurrent buyers on one product through the full saga.

``--buyers`` buyers (one process, each with its own JWT and ``user#`` subscription) order one
unit at a time of a product with ``--hot-stock`` units, until it is sold out or
``--hot-duration`` s pass: POST /orders -> OrderPlaced -> catalog reserves (a conditional update)
-> StockReserved -> orders confirms -> ``user#`` push. Reports orders confirmed per second, the
time from ``POST /orders`` to ``confirmed`` pushed, and oversell (confirmed units beyond the
stock, or a stock count that disagrees with the confirmations: must be 0).

    python -m bench.hot_sku [--buyers 100] [--hot-stock 4000] [--hot-duration 20]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from typing import Any

import httpx
import numpy as np
import psutil

from bench.core import infra, stats
from bench.core.runner import Ctx
from bench.fanout_full import create_product, wait_orders_know

NAME = "hot_sku"


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    env = ctx.env
    assert env is not None
    env.start_services()
    gw = env.start_gateways(1, conflation_ms=0, positions=True)[0]
    async with httpx.AsyncClient(timeout=30) as http:
        product = await create_product(ctx, http, stock=p.hot_stock + 1)
        pid = product["id"]
        await wait_orders_know(ctx, http, env.token("bench-warmup"), pid)  # takes the extra unit
        await asyncio.sleep(1.0)
        stock = (await http.get(f"{env.service_url('catalog')}/products/{pid}")).json()["available"]
        spec = {
            "buyers": p.buyers,
            "product_id": pid,
            "orders_url": env.service_url("orders"),
            "gateway_url": gw.url,
            "keys_dir": str(env.keys_dir),
            "run": uuid.uuid4().hex[:6],
            "deadline": time.time() + p.hot_duration + 15,
        }
        procs = {name: psutil.Process(pid_) for name, pid_ in env.service_pids().items()}
        procs["gateway"] = gw.ps
        cpu0 = {**{n: sum(pr.cpu_times()[:2]) for n, pr in procs.items()}, **infra.cpu_seconds()}
        mpctx = mp.get_context("spawn")
        queue = mpctx.Queue()
        from bench.core.buyers import buyers_main

        spec["deadline"] = time.time() + p.hot_duration + 5  # + buyers' start-up (tokens, connects)
        proc = mpctx.Process(target=buyers_main, args=(spec, queue), daemon=True, name="bench-buyers")
        proc.start()
        t0 = time.time()
        with ctx.phase(f"hot SKU: {p.buyers} buyers, {stock} units", p.hot_duration + 5) as update:
            while proc.is_alive() and queue.empty():
                await asyncio.sleep(0.5)
                product_now = (await http.get(f"{env.service_url('catalog')}/products/{pid}")).json()
                update(
                    min(time.time() - t0, p.hot_duration + 5),
                    f"{stock - product_now['available']} reserved, {product_now['available']} left",
                )
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: queue.get(timeout=120))
        proc.join(5)
        cpu1 = {**{n: sum(pr.cpu_times()[:2]) for n, pr in procs.items()}, **infra.cpu_seconds()}
        t1 = time.time()
        await asyncio.sleep(2.0)  # let any late reservation land before counting
        final = (await http.get(f"{env.service_url('catalog')}/products/{pid}")).json()
    orders = result["orders"]
    confirmed = [o for o in orders if o["status"] == "confirmed"]
    rejected = [o for o in orders if o["status"] == "rejected"]
    undecided = [o for o in orders if o["status"] == "no decision pushed"]
    http_errors = [o for o in orders if str(o["status"]).startswith("http")]
    lat = np.array([o["t_decided"] - o["t0"] for o in confirmed])
    accept = np.array([o["t_accepted"] - o["t0"] for o in confirmed])
    per_second: dict[int, int] = {}
    for o in confirmed:
        per_second[int(o["t_decided"])] = per_second.get(int(o["t_decided"]), 0) + 1
    if confirmed:
        first = min(o["t0"] for o in orders)
        last = max(o["t_decided"] for o in confirmed)
        rate = len(confirmed) / max(1e-6, last - first)
    else:
        rate = 0.0
    sold = stock - final["available"]
    oversold = max(0, len(confirmed) - stock) + (1 if final["available"] < 0 else 0) + abs(sold - len(confirmed))
    r = {
        "buyers": p.buyers,
        "stock": stock,
        "orders_posted": len(orders),
        "confirmed": len(confirmed),
        "rejected": len(rejected),
        "undecided": len(undecided),
        "http_errors": len(http_errors),
        "sold_out": final["available"] == 0,
        "available_after": final["available"],
        "units_sold": sold,
        "oversold": oversold,
        "confirmed_per_s": round(rate, 1),
        "confirmed_per_s_median": stats.steady_rate(per_second)["median_per_s"],
        "latency": stats.latency_summary(lat),
        "latency_hist": stats.latency_histogram(lat),
        "post_202_ms": stats.latency_summary(accept),
        "cpu_s": {n: round(cpu1[n] - cpu0[n], 2) for n in cpu0},
        "cpu_pct": {n: round(100 * (cpu1[n] - cpu0[n]) / max(1e-6, t1 - t0), 1) for n in cpu0},
        # CPU per confirmed order by process (ms), the buyers' own not included: what 300/s must fit in 2 cores.
        "cpu_ms_per_order": {n: round(1000 * (cpu1[n] - cpu0[n]) / max(1, len(confirmed)), 2) for n in cpu0},
        "buyer_errors": result["buyer_errors"],
        "buyer_error_samples": result["errors"],
    }
    ctx.log(
        f"  hot SKU: {r['confirmed']} confirmed of {stock} units at {r['confirmed_per_s']}/s, p99 POST -> "
        f"confirmed pushed {r['latency'].get('p99_ms')} ms, oversold {oversold}, rejected {r['rejected']}, "
        f"CPU% {r['cpu_pct']}"
    )
    return r


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
