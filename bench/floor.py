"""The floor: a bare broadcaster of our own (pre-framed bytes to each socket), saturated, same load tool.

python -m bench.floor [--fanout-clients 5000,10000] [--duration 20]
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
    runs = []
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
            state: dict[str, Any] = {}

            async def publish(duration: float, server: FloorServer = server, state: dict[str, Any] = state) -> int:
                out = await server.call("broadcast", rate=0, duration=duration)
                state.update(out)
                return int(out["publications"])

            def bounds(state: dict[str, Any] = state) -> dict[int, tuple[int, int]]:
                return {1: (1, state["publications"])} if state.get("publications") else {}

            def sent(state: dict[str, Any] = state) -> Any:
                return state.get("sent", {})

            r = await measure_fanout(
                ctx,
                f"floor C={c} saturated",
                duration=p.duration,
                publish=publish,
                sent=sent,
                bounds=bounds,
                server_cpu=server.cpu_seconds,
                server_rss=server.rss,
            )
            r.update(clients=c, mode="saturated", channels=1)
            ctx.log(f"  floor C={c}: {brief(r)}")
            runs.append(r)
        finally:
            await ctx.load.close_all()
            server.close()
    return {"runs": runs}


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
