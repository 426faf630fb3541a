"""Running scenarios: one (``python -m bench.<scenario>``) or all (``python -m bench``)."""

from __future__ import annotations

import asyncio
import importlib
import time
import traceback
from pathlib import Path
from typing import Any

from bench.core import report
from bench.core.calibrate import MachineWatch
from bench.core.runner import Ctx, Params

SCENARIOS = [
    "floor",
    "fanout_ceiling",
    "fanout_full",
    "connect_storm",
    "idle_memory",
    "hot_sku",
    "scale_out",
    "conflation",
]


async def _run(names: list[str], params: Params, out_name: str) -> dict[str, Any]:
    ctx = Ctx(params)
    doc: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": report.machine(),
        "versions": report.versions(),
        "parameters": params.as_dict(),
        "scenarios": {},
        "errors": {},
    }
    started = time.monotonic()
    watch = MachineWatch()
    try:
        ctx.start()
        doc["parameters"]["rlimit_nofile"] = ctx.nofile
        doc["parameters"]["gateway_settings"] = {
            "GATEWAY_MAX_CONNECTS_PER_SECOND": ctx.env.admission_rate if ctx.env else None,
            "GATEWAY_WARM_WINDOW_SECONDS": 0,
            "conflation": "off (stock conflation_ms=0) except in `conflation`",
        }
        for name in names:
            ctx.log(f"[bold cyan]== {name}[/]")
            t = time.monotonic()
            try:
                module = importlib.import_module(f"bench.{name}")
                result = await module.run(ctx)
                result["elapsed_s"] = round(time.monotonic() - t, 1)
                doc["scenarios"][name] = result
            except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others' figures
                ctx.log(f"[red]{name} failed: {exc!r}[/]")
                doc["errors"][name] = traceback.format_exc()
                if ctx.env is not None:
                    for line in ctx.env.gateway_log_tail(8):
                        ctx.log(f"    {line}")
                if ctx.load is not None:
                    try:
                        await ctx.load.close_all()
                    except Exception:  # noqa: BLE001
                        pass
    finally:
        await ctx.close()
    doc["machine"].update(watch.finish())
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    doc["summary"] = report.summary(doc)
    results = Path(params.results)
    results.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at the end
    plots = report.plots(doc, results, prefix="" if out_name == "latest" else f"{out_name}-")
    doc["plots"] = plots
    report.write_json(doc, results / f"{out_name}.json")
    report.print_summary(doc, ctx.console)
    ctx.console.print(f"results: {results / (out_name + '.json')}  plots: {', '.join(plots)}")
    return doc


def run_single(name: str, argv: list[str] | None = None) -> None:
    params = Params.parse(argv, description=f"bench scenario {name}")
    asyncio.run(_run([name], params, name))


def run_all(argv: list[str] | None = None) -> None:
    params = Params.parse(argv, description="every bench scenario")
    names = [n.strip() for n in params.only.split(",") if n.strip()] or SCENARIOS
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {SCENARIOS}")
    asyncio.run(_run(names, params, "latest"))
