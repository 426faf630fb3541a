"""Scenario 1, flash-sale fan-out on the full path: orders in, stock pushes out to C viewers.

C lean subscribers watch one product's ``stock:`` channel; buyers place orders through the orders
API at ``--e2e-rate``/s; each order's reservation commits in the catalog, whose outbox relay puts
the ``stock:`` publication on the push log, which the gateway fans out. Latency is the catalog's
commit time (``published_at``, read from the push stream by a tap) to receipt on every client.
Conflation off. Runs at each of ``--e2e-clients``.

    python -m bench.fanout_full [--e2e-clients 5000,10000] [--e2e-rate 5] [--duration 20]
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import httpx

from bench.core import stats
from bench.core.bus import CommitWatch, Tap, gateway_histogram
from bench.core.http import LeanHttp
from bench.core.runner import Ctx, brief, measure_fanout, open_clients, stage_brief
from bench.core.sdk import SdkWatcher

NAME = "fanout_full"
LAG_HISTOGRAM = "flashline_gateway_fanout_lag_seconds"  # published_at -> the gateway read it


async def create_product(ctx: Ctx, http: httpx.AsyncClient, stock: int) -> dict[str, Any]:
    env = ctx.env
    assert env is not None
    sku = f"BENCH-{uuid.uuid4().hex[:10]}"
    r = await http.post(
        f"{env.service_url('catalog')}/products",
        json={"sku": sku, "name": f"Bench sneaker {sku[-4:]}", "price_cents": 12000, "currency": "EUR", "stock": stock},
        headers={"Authorization": f"Bearer {env.token('bench-staff', 'staff')}"},
    )
    r.raise_for_status()
    return r.json()


async def place(ctx: Ctx, http: httpx.AsyncClient, token: str, product_id: int, quantity: int = 1) -> httpx.Response:
    env = ctx.env
    assert env is not None
    return await http.post(
        f"{env.service_url('orders')}/orders",
        json={"items": [{"product_id": product_id, "quantity": quantity}]},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
    )


async def wait_orders_know(ctx: Ctx, http: httpx.AsyncClient, token: str, product_id: int) -> None:
    """The orders service learns products from the catalog's events: wait until it takes an order."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = await place(ctx, http, token, product_id)
        if r.status_code == 202:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"orders never accepted product {product_id}")


async def full_path_run(
    ctx: Ctx, label: str, *, clients: int, rate: float, duration: float, gateways: int = 1
) -> dict[str, Any]:
    p = ctx.params
    env, load = ctx.env, ctx.load
    assert env is not None and load is not None
    env.start_services()
    gws = env.start_gateways(gateways, conflation_ms=0, positions=True)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as http:
        product = await create_product(ctx, http, stock=1_000_000)
        pid = product["id"]
        channel = f"stock:{pid}"
        tokens = [env.token(f"bench-buyer-{i}") for i in range(20)]
        await wait_orders_know(ctx, http, tokens[0], pid)
        tap = Tap(env.amqp_url, {channel: pid})
        await tap.start()
        commits = CommitWatch(env.config.database_urls["catalog"], channel, pid)
        await commits.start()
        ports = [g.port for g in gws]
        lag_before: dict[float, float] = {}
        fixed = {"gateway": [g.pid for g in gws], "load_tool": [p for p in load.pids if p], "bench": [os.getpid()]}
        fixed.update({svc: [p] for svc, p in env.service_pids().items()})
        clock = stats.ProcessClock(
            {
                **{name: stats.fixed_pids(pids) for name, pids in fixed.items()},
                "rabbitmq": stats.pids_named("beam.smp"),
                "postgres": stats.pids_named("postgres"),
            }
        )
        sdk = SdkWatcher(gws[0].url, channel) if p.sdk_check else None
        # Lean keep-alive clients for the timed orders: httpx cost the bench ~12 ms of CPU per
        # order, on the two cores the fan-out shares (idle ones are reused, one request each).
        idle: list[LeanHttp] = []
        try:
            await open_clients(
                ctx,
                label,
                clients,
                targets=[("127.0.0.1", g.port) for g in gws],
                channels=[channel],
                concurrency=p.storm_concurrency,
            )
            if sdk is not None:
                await sdk.start()
            await asyncio.sleep(1.0)  # the warm-up order's publication has passed
            start = (await http.get(f"{env.service_url('catalog')}/products/{pid}")).json()["stream"]["offset"]
            outcome: dict[str, int] = {}

            async def order(token: str) -> None:
                client = idle.pop() if idle else LeanHttp(env.service_url("orders"))
                try:
                    status, _ = await client.post_json(
                        "/orders",
                        {"items": [{"product_id": pid, "quantity": 1}]},
                        {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                    )
                    result = str(status)
                    idle.append(client)
                except Exception:  # noqa: BLE001 - counted, the run goes on
                    result = "error"
                    client.close()
                outcome[result] = outcome.get(result, 0) + 1

            async def publish(duration: float) -> int:
                lag_before.update(await gateway_histogram(ports, LAG_HISTOGRAM))
                clock.start()
                started = time.monotonic()
                sent = 0
                pending: set[asyncio.Task] = set()
                while time.monotonic() - started < duration:
                    due = int(rate * (time.monotonic() - started)) + 1 - sent
                    for _ in range(max(0, due)):
                        task = asyncio.ensure_future(order(tokens[sent % len(tokens)]))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                        sent += 1
                    await asyncio.sleep(0.01)
                if pending:
                    await asyncio.wait(pending, timeout=10)
                # let the saga finish: every accepted order's reservation is published
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and tap.top.get(pid, 0) < start + outcome.get("202", 0):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                return sent

            def cpu() -> float:
                return sum(g.cpu_seconds() for g in gws)

            def rss() -> int:
                return sum(g.rss() for g in gws)

            r = await measure_fanout(
                ctx,
                label,
                duration=duration,
                publish=publish,
                sent=lambda: tap.published,
                bounds=lambda: {pid: (start + 1, tap.top.get(pid, start))},
                server_cpu=cpu,
                server_rss=rss,
                sdk=sdk,
            )
            processes = clock.stop(tap.top.get(pid, start) - start)
            got = await load.collect(None, raw=True)
            breakdown = stats.stages(
                got["keys"],
                got["times"],
                {
                    "published": tap.published,
                    "committed": commits.committed,
                    "routed": tap.routed,
                    "received": tap.received,
                },
            )
            lag_after = await gateway_histogram(ports, LAG_HISTOGRAM)
            breakdown["abc_published_to_gateway_histogram"] = stats.histogram_quantiles(lag_before, lag_after)
            r.update(
                stages=breakdown,
                per_publication_processes=processes,
                clients=clients,
                rate=rate,
                gateways=gateways,
                channels=1,
                orders=outcome,
                stock_publications=tap.top.get(pid, start) - start,
                service_cpu_note="gateway CPU only; catalog/orders/relays are not in server_cpu",
            )
            return r
        finally:
            for client in idle:
                client.close()
            if sdk is not None:
                await sdk.close()
            await load.close_all()
            await tap.close()
            await commits.close()


def process_brief(processes: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {p['cpu_ms']}/{p['wait_ms']}" if "cpu_ms" in p else f"{name} idle {p['idle_ms']} steal {p['steal_ms']}"
        for name, p in processes.items()
    )


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    runs = []
    for c in p.ints("e2e_clients"):
        c = ctx.cap_clients(c)
        r = await full_path_run(
            ctx, f"full path C={c} x {p.e2e_rate:g}/s", clients=c, rate=p.e2e_rate, duration=p.duration
        )
        ctx.log(f"  full path C={c} x {p.e2e_rate:g} orders/s: {brief(r)}")
        ctx.log(f"  stages p50/p99 ms: {stage_brief(r['stages'])}")
        ctx.log(f"  per publication, CPU/run-queue wait ms: {process_brief(r['per_publication_processes'])}")
        runs.append(r)
    return {"runs": runs}


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
