"""The floor: a bare broadcaster of our own (pre-framed bytes to each socket), same load tool.

Saturated at every ``--fanout-clients`` (target 6 compares the gateway's deliveries/s with it), and
at scenario 1's rate at every ``--e2e-clients`` among them: the latency a broadcaster with no
protocol, no auth and no producer path reaches at 2b's point on this machine.

python -m bench.floor [--fanout-clients 5000,10000] [--e2e-rate 5] [--duration 20]
"""

from __future__ import annotations

from typing import Any

from bench.core.floor_server import FloorServer
from bench.core.runner import Ctx, brief, measure_fanout, open_clients
from flashline_service.testing import free_port

NAME = "floor"


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    assert ctx.load is not None
    runs: list[dict[str, Any]] = []
    at_rate: list[dict[str, Any]] = []
    at_rate_clients = {ctx.cap_clients(c) for c in p.ints("e2e_clients")}
    for c in p.ints("fanout_clients"):
        c = ctx.cap_clients(c)
        server = FloorServer(free_port())
        try:
            await open_clients(
                ctx,
                f"floor C={c}",
                c,
                targets=[("127.0.0.1", server.port)],
                channels=["stock:1"],
                raw=True,
                concurrency=p.storm_concurrency,
            )
            r = await _measure(ctx, server, f"floor C={c} saturated", rate=0)
            r.update(clients=c, mode="saturated", channels=1)
            ctx.log(f"  floor C={c}: {brief(r)}")
            runs.append(r)
            if c in at_rate_clients and p.e2e_rate > 0:
                r = await _measure(ctx, server, f"floor C={c} x {p.e2e_rate:g}/s", rate=p.e2e_rate)
                r.update(clients=c, mode="rate", channels=1, rate=p.e2e_rate)
                ctx.log(f"  floor C={c} x {p.e2e_rate:g}/s: {brief(r)}")
                at_rate.append(r)
        finally:
            await ctx.load.close_all()
            server.close()
    return {"runs": runs, "at_rate": at_rate}


async def _measure(ctx: Ctx, server: FloorServer, label: str, *, rate: float) -> dict[str, Any]:
    """One broadcast of ``ctx.params.duration`` to the open clients: ``rate``/s, or (0) saturated."""
    state: dict[str, Any] = {}

    async def publish(duration: float) -> int:
        out = await server.call("broadcast", rate=rate, duration=duration)
        state.update(out)
        return int(out["publications"])

    def bounds() -> dict[int, tuple[int, int]]:
        return {1: (1, state["publications"])} if state.get("publications") else {}

    return await measure_fanout(
        ctx,
        label,
        duration=ctx.params.duration,
        publish=publish,
        sent=lambda: state.get("sent", {}),
        bounds=bounds,
        server_cpu=server.cpu_seconds,
        server_rss=server.rss,
    )


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
