"""Scenario 2, the gateway fan-out ceiling: publications injected on the bus as fast as the gateway takes them.

C subscribers on one channel (at each of ``--fanout-clients``) and C on ``--many-channels``
channels; plus the latency point of target 2 (``--latency-clients`` x ``--latency-rate``/s,
``--latency-rounds`` times).
Conflation off. The injector waits whenever the gateway is ``--max-backlog`` publications behind
(read from its /metrics), so the rate found is the most it can take, not a queue in the stream.

    python -m bench.fanout_ceiling [--fanout-clients 5000,10000] [--clients 10000] [--duration 20]
"""

from __future__ import annotations

from typing import Any

from bench.core.bus import GatewayProgress, Injector
from bench.core.runner import Ctx, brief, measure_fanout, open_clients, stage_brief
from bench.core.sdk import SdkWatcher

NAME = "fanout_ceiling"


async def injected_run(
    ctx: Ctx,
    label: str,
    *,
    clients: int,
    n_channels: int,
    rate: float,
    saturate: bool,
    conflation_ms: int | None = 0,  # None: the namespace's own setting
    duration: float | None = None,
) -> dict[str, Any]:
    """One gateway, ``clients`` lean subscribers over ``n_channels`` channels, publications from the bus."""
    p = ctx.params
    env, load = ctx.env, ctx.load
    assert env is not None and load is not None
    gw = env.start_gateways(1, conflation_ms=conflation_ms)[0]
    chans = ctx.channels(n_channels)
    injector = Injector(env.amqp_url)
    await injector.connect()
    progress = GatewayProgress([gw.port])
    sdk = SdkWatcher(gw.url, f"stock:{chans[0]}") if p.sdk_check else None
    try:
        # every channel gets a first publication, so the gateway knows it before anyone subscribes
        for c in chans:
            await injector.publish(c)
        await open_clients(
            ctx,
            label,
            clients,
            targets=[("127.0.0.1", gw.port)],
            channels=[f"stock:{c}" for c in chans],
            concurrency=p.storm_concurrency,
        )
        if sdk is not None:
            await sdk.start()
        await progress.start()
        since = dict(injector.top)
        base_sent = sum(injector.top.values())

        async def publish(duration: float) -> int:
            if saturate:
                return await injector.run(
                    rate=0,
                    duration=duration,
                    channels=chans,
                    backlog=lambda: sum(injector.top.values()) - base_sent - progress.read,
                    max_backlog=max(p.max_backlog, p.max_backlog_deliveries * n_channels // max(1, clients)),
                )
            return await injector.run(rate=rate, duration=duration, channels=chans)

        r = await measure_fanout(
            ctx,
            label,
            duration=duration or p.duration,
            publish=publish,
            sent=lambda: injector.sent,
            bounds=lambda: injector.bounds(since),
            server_cpu=gw.cpu_seconds,
            server_rss=gw.rss,
            sdk=sdk,
        )
        r.update(
            clients=clients,
            channels=n_channels,
            mode="saturated" if saturate else f"{rate:g}/s",
            publish_rate=rate if not saturate else round((r["published"] or 0) / (duration or p.duration), 1),
            gateway_rss_mb=round(gw.rss() / 2**20, 1),
        )
        return r
    finally:
        await progress.stop()
        if sdk is not None:
            await sdk.close()
        await load.close_all()
        await injector.close()


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    runs = []
    for c in p.ints("fanout_clients"):
        c = ctx.cap_clients(c)
        r = await injected_run(ctx, f"ceiling C={c} x 1 channel", clients=c, n_channels=1, rate=0, saturate=True)
        ctx.log(f"  ceiling C={c} one channel: {brief(r)}")
        runs.append(r)
    c = ctx.cap_clients(p.clients)
    r = await injected_run(
        ctx, f"ceiling C={c} x {p.many_channels} channels", clients=c, n_channels=p.many_channels, rate=0, saturate=True
    )
    ctx.log(f"  ceiling C={c} on {p.many_channels} channels: {brief(r)}")
    runs.append(r)
    return {"runs": runs, "latency_run": await latency_point(ctx)}


async def latency_point(ctx: Ctx) -> dict[str, Any]:
    """Target 2a's point, ``--latency-rounds`` times on fresh gateways; the median round by p99 is
    the figure (one run's p99 moves by half on this shared machine), every round is kept."""
    p = ctx.params
    lc = ctx.cap_clients(p.latency_clients)
    rounds = max(1, p.latency_rounds)
    runs = []
    for n in range(1, rounds + 1):
        label = f"latency C={lc} x {p.latency_rate:g}/s ({n}/{rounds})"
        r = await injected_run(ctx, label, clients=lc, n_channels=1, rate=p.latency_rate, saturate=False)
        ctx.log(f"  {label}: {brief(r)}")
        ctx.log(f"    per publication p50/p99 ms: {stage_brief(r.get('latency_split', {}))}")
        runs.append(r)
    ranked = sorted(runs, key=lambda r: r["latency"].get("p99_ms") or float("inf"))
    median = dict(ranked[(len(ranked) - 1) // 2])
    median["rounds"] = [
        {
            "p50_ms": r["latency"].get("p50_ms"),
            "p99_ms": r["latency"].get("p99_ms"),
            "loss": r["loss"],
            "server_cpu_us_per_delivery": r["server_cpu_us_per_delivery"],
            "latency_split": r.get("latency_split", {}),
        }
        for r in runs
    ]
    return median


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
