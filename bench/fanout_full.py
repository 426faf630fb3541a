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
import time
import uuid
from typing import Any

import httpx

from bench.core.bus import Tap
from bench.core.runner import Ctx, brief, measure_fanout, open_clients
from bench.core.sdk import SdkWatcher

NAME = "fanout_full"


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
        sdk = SdkWatcher(gws[0].url, channel) if p.sdk_check else None
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

            async def publish(duration: float) -> int:
                started = time.monotonic()
                sent = 0
                pending: set[asyncio.Task] = set()
                while time.monotonic() - started < duration:
                    due = int(rate * (time.monotonic() - started)) + 1 - sent
                    for _ in range(max(0, due)):
                        task = asyncio.ensure_future(place(ctx, http, tokens[sent % len(tokens)], pid))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                        task.add_done_callback(
                            lambda t: outcome.__setitem__(
                                str(t.result().status_code) if not t.exception() else "error",
                                outcome.get(str(t.result().status_code) if not t.exception() else "error", 0) + 1,
                            )
                        )
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
            r.update(
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
            if sdk is not None:
                await sdk.close()
            await load.close_all()
            await tap.close()


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    runs = []
    for c in p.ints("e2e_clients"):
        c = ctx.cap_clients(c)
        r = await full_path_run(
            ctx, f"full path C={c} x {p.e2e_rate:g}/s", clients=c, rate=p.e2e_rate, duration=p.duration
        )
        ctx.log(f"  full path C={c} x {p.e2e_rate:g} orders/s: {brief(r)}")
        runs.append(r)
    return {"runs": runs}


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
