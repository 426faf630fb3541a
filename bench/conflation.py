"""Conflation, measured on its own: deliveries per client per second under a publication storm.

The ``stock`` namespace's own conflation window (100 ms by default) is on here, and only here;
``--conflation-rate`` publications/s on one channel for ``--conflation-duration`` s to
``--conflation-clients`` subscribers. Every client must still end on the latest publication.

    python -m bench.conflation [--conflation-rate 500] [--conflation-clients 1000]
"""

from __future__ import annotations

from typing import Any

from bench.core.runner import Ctx, brief
from bench.fanout_ceiling import injected_run

NAME = "conflation"


async def run(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    c = ctx.cap_clients(p.conflation_clients)
    r = await injected_run(
        ctx,
        f"conflation C={c}, {p.conflation_rate:g}/s storm",
        clients=c,
        n_channels=1,
        rate=p.conflation_rate,
        saturate=False,
        conflation_ms=None,
        duration=p.conflation_duration,
    )
    published = r["published"] or 0
    r.update(
        conflation_ms=100,
        publish_rate=p.conflation_rate,
        per_client_per_s=round(r["deliveries"] / max(1, c) / p.conflation_duration, 2),
        publications_per_s=round(published / p.conflation_duration, 1),
        latest_delivered=r["clients_missing_latest"] == 0,
    )
    r.pop("sdk_check", None)  # the SDK sees the conflated stream too: gaps are the point here
    ctx.log(
        f"  conflation: {r['per_client_per_s']} deliveries per client per second under "
        f"{r['publications_per_s']}/s; every client got the latest: {r['latest_delivered']}; {brief(r)}"
    )
    return r


def main() -> None:
    from bench.core.main import run_single

    run_single(NAME)


if __name__ == "__main__":
    main()
