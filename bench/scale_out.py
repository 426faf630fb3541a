"""Scenario 6, scale-out: scenarios 1 (full path) and 3 (connect storm) with 1, 2 and 3 gateway processes.

Clients are spread round-robin over the gateways (as a load balancer would). On a 2-core machine
the extra processes share the same two cores with the load tool and the services, so this shows
the cost of every pod reading the whole push log and how connects spread, not a linear speed-up.

    python -m bench.scale_out [--gateways 1,2,3] [--scale-clients 10000] [--scale-duration 12]
"""

from __future__ import annotations

from typing import Any

from bench.connect_storm import storm_run
from bench.core.runner import Ctx, brief
from bench.fanout_full import full_path_run

NAME = "scale_out"


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    c = ctx.cap_clients(p.scale_clients)
    runs = []
    for k in p.ints("gateways"):
        fan = await full_path_run(
            ctx, f"scale-out {k} gw: full path C={c}", clients=c, rate=p.e2e_rate, duration=p.scale_duration, gateways=k
        )
        ctx.log(f"  {k} gateway(s), full path: {brief(fan)}")
        storm = await storm_run(ctx, f"scale-out {k} gw: storm C={c}", clients=c, gateways=k)
        ctx.log(
            f"  {k} gateway(s), storm: {storm['connects_per_s']:,.0f} connects/s, "
            f"{storm['server_cpu_us_per_connect']} us/connect, failed {storm['failed']}"
        )
        runs.append({"gateways": k, "fanout": fan, "storm": storm})
    ctx.env.stop_gateways()  # type: ignore[union-attr]
    return {"runs": runs}


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
