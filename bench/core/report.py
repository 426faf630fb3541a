"""latest.json, the PNG plots and the summary table (figures against the issue's targets)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pkg in (
        "websockets",
        "aio-pika",
        "aiormq",
        "orjson",
        "uvloop",
        "centrifuge-python",
        "pydantic",
        "pyjwt",
        "cryptography",
        "fastapi",
        "uvicorn",
        "sqlalchemy",
        "asyncpg",
        "flashline-push-gateway",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    out["git_commit"] = _cmd(["git", "rev-parse", "--short", "HEAD"])
    out["git_dirty"] = bool(_cmd(["git", "status", "--porcelain", "--untracked-files=no"]))
    rabbit = _cmd(["rabbitmqctl", "version"])
    if rabbit:
        out["rabbitmq"] = rabbit.splitlines()[-1]
    pg = _cmd(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"])
    if pg:
        out["postgres"] = pg.split()[0]
    return out


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, default=str))


# ---- targets --------------------------------------------------------------------------------------


def _closest(runs: list[dict[str, Any]], clients: int, channels: int = 1) -> dict[str, Any] | None:
    cands = [r for r in runs if r.get("channels") == channels]
    return min(cands, key=lambda r: abs(r["clients"] - clients)) if cands else None


# The full path's stages (``stats.stages``), in order: the producer's statement and commit, its
# relay, the stream's delivery to a consumer, the gateway's first write and its last.
STAGES = (
    ("a_published_to_commit", "catalog statement + commit"),
    ("b_commit_to_exchange", "relay"),
    ("c_exchange_to_stream_consumer", "stream delivery"),
    ("d_stream_consumer_to_first_client", "to the first client"),
    ("de_first_to_last_client", "first to last client (the fan-out)"),
)


def _ms(stage: dict[str, Any] | None) -> str:
    return f"{stage['p50_ms']}/{stage['p99_ms']}" if stage and stage.get("count") else "-"


def _rounds(rounds: list[dict[str, Any]]) -> str:
    """The storm's rounds (the figure is their median), when there were several."""
    if len(rounds) < 2:
        return ""
    return "; median of " + ", ".join(f"{r['server_cpu_us_per_connect']}" for r in rounds) + " us"


def summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows: scenario, figure, measured, target, met (None where there is no target)."""
    s = doc["scenarios"]
    rows: list[dict[str, Any]] = []
    m = doc.get("machine", {})

    def add(
        scenario: str, figure: str, value: Any, target: str = "", met: bool | None = None, condition: str = ""
    ) -> None:
        rows.append(
            {
                "scenario": scenario,
                "figure": figure,
                "value": value,
                "target": target,
                "met": met,
                "condition": condition,
            }
        )

    floor_runs = s.get("floor", {}).get("runs", [])
    ceil_runs = s.get("fanout_ceiling", {}).get("runs", [])
    for r in floor_runs:
        add(
            "floor",
            "deliveries/s (saturated)",
            f"{r['deliveries_per_s']:,.0f}",
            condition=f"C={r['clients']}, 1 channel; server {r['server_cpu_us_per_delivery']} us/delivery, "
            f"load tool {r['load_cpu_pct']}% CPU",
        )
    for r in s.get("floor", {}).get("at_rate", []):
        add(
            "floor",
            "p99 at scenario 1's rate",
            f"{r['latency'].get('p99_ms')} ms",
            condition=f"C={r['clients']} x {r['rate']:g}/s, no protocol, no producer path: what one process "
            f"writing loopback sockets reaches here (2b's bound); p50 {r['latency'].get('p50_ms')} ms, "
            f"server {r['server_cpu_us_per_delivery']} us/delivery",
        )
    for r in ceil_runs:
        cond = f"C={r['clients']}, {r['channels']} channel(s), {r['publish_rate']} pubs/s"
        loss = r.get("loss") or 0.0
        if r["channels"] == 1 and r["clients"] == (_closest(ceil_runs, 5000) or {}).get("clients"):
            add(
                "2 ceiling",
                "gateway CPU per delivery",
                f"{r['server_cpu_us_per_delivery']} us",
                "<= 11 us, 0 loss" + ("" if r["clients"] == 5000 else " (target is at 5,000)"),
                (r["server_cpu_us_per_delivery"] or 1e9) <= 11 and loss == 0,
                cond,
            )
        add(
            "2 ceiling",
            "deliveries/s (saturated)",
            f"{r['deliveries_per_s']:,.0f}",
            condition=cond + f"; {r['server_cpu_us_per_delivery']} us/delivery, load tool {r['load_cpu_pct']}% CPU, "
            f"loss {loss:.3%}, p99 {r['latency'].get('p99_ms')} ms",
        )
        floor = _closest(floor_runs, r["clients"]) if r["channels"] == 1 else None
        if floor and floor["clients"] == r["clients"] and floor["deliveries_per_s"]:
            ratio = r["deliveries_per_s"] / floor["deliveries_per_s"]
            add(
                "6 floor",
                "gateway / floor deliveries/s",
                f"{ratio:.2f}",
                ">= 0.8",
                ratio >= 0.8,
                f"C={r['clients']}, 1 channel, same run",
            )
    lat = s.get("fanout_ceiling", {}).get("latency_run")
    if lat:
        loss = lat.get("loss") or 0.0
        at_target = lat["clients"] == 1000 and abs(lat["publish_rate"] - 20) < 1e-9
        add(
            "2 latency",
            "p99 through the gateway",
            f"{lat['latency'].get('p99_ms')} ms",
            "<= 25 ms, 0 loss" if at_target else "(target is at 1,000 x 20/s)",
            ((lat["latency"].get("p99_ms") or 1e9) <= 25 and loss == 0) if at_target else None,
            f"C={lat['clients']} x {lat['publish_rate']}/s; p50 {lat['latency'].get('p50_ms')} ms, loss {loss:.3%}"
            + (f"; median of p99s {[r['p99_ms'] for r in lat['rounds']]}" if len(lat.get("rounds", [])) > 1 else ""),
        )
    for r in s.get("fanout_full", {}).get("runs", []):
        loss = r.get("loss") or 0.0
        target = r["clients"] == 5000 and abs(r.get("rate", 0) - 5) < 1e-9
        add(
            "1 full path",
            "p99 catalog commit -> client",
            f"{r['latency'].get('p99_ms')} ms",
            "<= 50 ms, 0 loss" if target else "",
            ((r["latency"].get("p99_ms") or 1e9) <= 50 and loss == 0) if target else None,
            f"C={r['clients']} x {r.get('rate')} orders/s; {r['deliveries_per_s']:,.0f} deliveries/s, "
            f"loss {loss:.3%}, p50 {r['latency'].get('p50_ms')} ms",
        )
        stages = r.get("stages")
        if stages:
            add(
                "1 full path",
                "where the time goes (p50/p99 ms per publication)",
                " + ".join(f"{_ms(stages.get(k))}" for k, _ in STAGES),
                condition=", ".join(label for _, label in STAGES)
                + f"; gateway CPU {r.get('per_publication_processes', {}).get('gateway', {}).get('cpu_ms')} ms"
                " per publication",
            )
    storm = s.get("connect_storm")
    if storm:
        add(
            "3 connect storm",
            "gateway CPU per connect+subscribe",
            f"{storm['server_cpu_us_per_connect']} us",
            "<= 300 us",
            (storm["server_cpu_us_per_connect"] or 1e9) <= 300,
            f"C={storm['clients']}; {storm['connects_per_s']:,.0f} connects/s, all subscribed in "
            f"{storm['time_to_all_subscribed_s']} s, failures {storm['failed']}" + _rounds(storm.get("rounds", [])),
        )
    mem = s.get("idle_memory")
    if mem:
        add(
            "4 idle memory",
            "gateway KiB per idle subscribed connection",
            f"{mem['kib_per_connection']}",
            "<= 10 KiB",
            mem["kib_per_connection"] <= 10,
            f"0 -> {mem['clients']} connections; RSS {mem['rss_0_mb']} -> {mem['rss_c_mb']} MB",
        )
    hot = s.get("hot_sku")
    if hot:
        add(
            "5 hot SKU",
            "orders confirmed/s on one product",
            f"{hot['confirmed_per_s']}",
            ">= 300/s, 0 oversold",
            hot["confirmed_per_s"] >= 300 and hot["oversold"] == 0,
            f"{hot['buyers']} buyers; p99 POST -> confirmed pushed {hot['latency'].get('p99_ms')} ms; "
            f"oversold {hot['oversold']}",
        )
    for r in s.get("scale_out", {}).get("runs", []):
        add(
            "6 scale-out",
            f"{r['gateways']} gateway(s)",
            f"p99 {r['fanout']['latency'].get('p99_ms')} ms, {r['storm']['connects_per_s']:,.0f} connects/s",
            condition=f"full path C={r['fanout']['clients']} x {r['fanout'].get('rate')}/s "
            f"({r['fanout']['server_cpu_us_per_delivery']} us/delivery all gateways, loss "
            f"{(r['fanout'].get('loss') or 0):.3%}); "
            f"storm {r['storm']['server_cpu_us_per_connect']} us/connect",
        )
    reference = m.get("reference_connect_sans_io_us")
    if reference:
        add(
            "machine",
            "reference: sans-I/O connect + subscribe",
            f"{reference['start']} -> {reference['end']} us",
            condition=f"start -> end of the run; CPU stolen by the hypervisor: {m.get('steal_pct')} %. "
            "Compare runs' figures with their references",
        )
    conf = s.get("conflation")
    if conf:
        add(
            "conflation",
            "deliveries per client per second",
            f"{conf['per_client_per_s']}",
            condition=f"{conf['publish_rate']}/s publication storm, {conf['clients']} clients, window "
            f"{conf['conflation_ms']} ms; latest delivered: {conf['latest_delivered']}",
        )
    return rows


def print_summary(doc: dict[str, Any], console: Console) -> None:
    table = Table(title="Flashline bench: summary", show_lines=False)
    for col in ("scenario", "figure", "measured", "target", "met", "under"):
        table.add_column(col, overflow="fold")
    for row in doc.get("summary", []):
        met = "" if row["met"] is None else ("[green]yes[/]" if row["met"] else "[red]NO[/]")
        table.add_row(row["scenario"], row["figure"], str(row["value"]), row["target"], met, row["condition"])
    console.print(table)
    for name, err in doc.get("errors", {}).items():
        console.print(f"[red]{name} failed:[/] {err.strip().splitlines()[-1]}")


# ---- plots ------------------------------------------------------------------------------------------


def plots(doc: dict[str, Any], folder: Path, prefix: str = "") -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    made: list[str] = []
    s = doc["scenarios"]

    # 1. latency distributions (CDF on a log axis)
    curves: list[tuple[str, dict[str, Any]]] = []
    lat = s.get("fanout_ceiling", {}).get("latency_run")
    if lat:
        curves.append((f"gateway {lat['clients']} x {lat['publish_rate']}/s (injected)", lat))
    for r in s.get("fanout_full", {}).get("runs", []):
        curves.append((f"full path {r['clients']} x {r.get('rate')}/s (catalog commit)", r))
    for r in s.get("fanout_ceiling", {}).get("runs", []):
        curves.append((f"ceiling {r['clients']} subs, {r['channels']} ch, saturated", r))
    for r in s.get("floor", {}).get("runs", []):
        curves.append((f"floor {r['clients']} subs, saturated", r))
    for r in s.get("floor", {}).get("at_rate", []):
        curves.append((f"floor {r['clients']} x {r['rate']:g}/s", r))
    hot = s.get("hot_sku")
    if hot and hot.get("latency_hist"):
        curves.append((f"hot SKU: POST /orders -> confirmed pushed ({hot['buyers']} buyers)", hot))
    if curves:
        fig, ax = plt.subplots(figsize=(10, 6))
        for label, r in curves:
            h = r.get("latency_hist") or {}
            if not h.get("counts"):
                continue
            counts = np.array(h["counts"], dtype=float)
            edges = np.array(h["edges_ms"])
            cdf = np.cumsum(counts) / counts.sum()
            ax.step(edges[1:], cdf * 100, where="post", label=f"{label}: p99 {r['latency'].get('p99_ms')} ms")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("deliveries within (%)")
        ax.axhline(99, color="grey", lw=0.6, ls=":")
        ax.axvline(25, color="tab:red", lw=0.6, ls="--")
        ax.axvline(50, color="tab:purple", lw=0.6, ls="--")
        ax.set_title("Latency distribution (CDF). Dashed: targets 25 ms (gateway) and 50 ms (end to end)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = folder / f"{prefix}latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path.name)

    # 2. deliveries/s over time
    rate_curves = []
    for r in s.get("floor", {}).get("runs", []):
        rate_curves.append((f"floor {r['clients']} subs", r, "--"))
    for r in s.get("fanout_ceiling", {}).get("runs", []):
        rate_curves.append((f"gateway {r['clients']} subs, {r['channels']} ch", r, "-"))
    for r in s.get("fanout_full", {}).get("runs", []):
        rate_curves.append((f"full path {r['clients']} x {r.get('rate')}/s", r, ":"))
    if rate_curves:
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
        for label, r, ls in rate_curves:
            pts = r["series"]["deliveries_per_s"]
            if pts:
                xs, ys = zip(*pts, strict=False)
                ax.plot(xs, ys, ls, label=f"{label}: median {r['deliveries_per_s']:,.0f}/s")
            cpu = r["series"].get("server_cpu_pct") or []
            if cpu:
                xs, ys = zip(*cpu, strict=False)
                ax2.plot(xs, ys, ls, label=f"server CPU, {label}")
        ax.set_ylabel("deliveries/s")
        ax.set_title("Deliveries per second over each run (saturated unless a rate is given)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        ax2.set_ylabel("server process CPU (%)")
        ax2.set_xlabel("seconds since the run's start")
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{prefix}throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path.name)

    # 3. memory vs connections
    mem = s.get("idle_memory")
    if mem and mem.get("steps"):
        fig, ax = plt.subplots(figsize=(8, 5))
        xs = tuple(st["connections"] for st in mem["steps"])
        ys = tuple(st["rss_mb"] for st in mem["steps"])
        ax.plot(xs, ys, "o-", label="gateway RSS")
        if len(xs) > 1:
            slope_mb = mem["kib_per_connection"] / 1024
            ax.plot(
                xs,
                [ys[0] + slope_mb * (x - xs[0]) for x in xs],
                "--",
                color="grey",
                label=f"fit: {mem['kib_per_connection']} KiB per connection",
            )
            ax.plot(
                xs,
                [ys[0] + 10 / 1024 * (x - xs[0]) for x in xs],
                ":",
                color="tab:red",
                label="target: 10 KiB per connection",
            )
        ax.set_xlabel("idle subscribed connections")
        ax.set_ylabel("RSS (MB)")
        ax.set_title("Gateway memory vs connections")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = folder / f"{prefix}memory.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path.name)

    # 4. connect storm: connections subscribed over time
    storm = s.get("connect_storm")
    if storm and storm.get("subscribed_over_time"):
        fig, ax = plt.subplots(figsize=(8, 5))
        xs, ys = zip(*storm["subscribed_over_time"], strict=False)
        ax.plot(xs, ys, label=f"1 gateway: {storm['connects_per_s']:,.0f}/s")
        for r in s.get("scale_out", {}).get("runs", []):
            pts = r["storm"].get("subscribed_over_time")
            if pts:
                xs, ys = zip(*pts, strict=False)
                ax.plot(xs, ys, "--", label=f"{r['gateways']} gateway(s): {r['storm']['connects_per_s']:,.0f}/s")
        ax.set_xlabel("seconds since the storm started")
        ax.set_ylabel("connections subscribed")
        ax.set_title("Connect storm (JWT connect + subscribe)")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = folder / f"{prefix}connect.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path.name)
    return made
