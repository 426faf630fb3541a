"""What a bench run stands on: a throwaway vhost (and databases), dev keys, and the processes.

Nothing is shared with ``make run`` or the test suites: the vhost and databases are named
``flashline-bench-<run>`` / ``flashline_bench_<run>_*`` and removed at the end, keys live in a
temporary folder, every port is a free one. Gateways are started with the bench's own settings
(``gateway_env``): no warm-up replay, admission rate raised so the storm measures the gateway and
not its token bucket, conflation per scenario, and no admin API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from flashline_devstack.processes import ProcessGroup
from flashline_devstack.stack import SERVICES, StackConfig, provision, start_services

from flashline_service.testing import ThrowawayDatabases, ThrowawayVhost, free_port, user_token


def _pyspy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


@dataclass
class GatewayProc:
    name: str
    port: int
    pid: int
    ps: psutil.Process

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.ps.memory_info().rss


@dataclass
class BenchEnv:
    """Throwaway infrastructure for one bench run; ``close()`` removes all of it."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    admission_rate: float = 100_000.0
    idp_algorithm: str = "RS256"  # what the identity provider signs connection tokens with
    gateway_extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # BENCH_GATEWAY_ENV="GATEWAY_LOG_LEVEL=WARNING,GATEWAY_CLIENT_QUEUE_BYTES=2097152": experiments
        for item in os.environ.get("BENCH_GATEWAY_ENV", "").split(","):
            if "=" in item:
                key, value = item.split("=", 1)
                self.gateway_extra.setdefault(key.strip(), value.strip())
        self.tmp = Path(tempfile.mkdtemp(prefix="flashline-bench-"))
        self.keys_dir = self.tmp / "keys"
        from flashline_auth.dev import ensure_dev_keys

        ensure_dev_keys(self.keys_dir, {"identity": self.idp_algorithm})
        self.vhost = ThrowawayVhost(f"flashline-bench-{self.run_id}")
        self.vhost.create()
        self.dbs: ThrowawayDatabases | None = None
        self.group = ProcessGroup(echo=False, color=False)
        self.gateways: list[GatewayProc] = []
        self.services_up = False
        self.config = StackConfig(
            keys_dir=self.keys_dir,
            vhost=self.vhost.name,
            environment="test",
            ports={svc: 0 for svc in SERVICES},
            gateway_ports=[],
        )
        self._gateway_seq = 0
        # BENCH_PROFILE_DIR: record every gateway with py-spy (python -m bench.profile sets it)
        profile = os.environ.get("BENCH_PROFILE_DIR")
        self.profile_dir = Path(profile) if profile else None
        self.profile_format = os.environ.get("BENCH_PROFILE_FORMAT", "flamegraph")
        self._profilers: list[subprocess.Popen[bytes]] = []
        self._service_profilers: list[subprocess.Popen[bytes]] = []

    @property
    def amqp_url(self) -> str:
        return self.vhost.url

    # ---- the three services (full-path scenarios) --------------------------------------------------

    def start_services(self) -> None:
        if self.services_up:
            return
        self.dbs = ThrowawayDatabases(f"flashline_bench_{self.run_id}")
        self.config.database_urls = {svc: self.dbs.create(svc) for svc in SERVICES}
        self.config.ports = {svc: free_port() for svc in SERVICES}
        provision(self.config, create_databases=False)
        start_services(self.config, self.group)
        self.services_up = True
        if self.profile_dir is not None:
            for svc in SERVICES:
                self._service_profilers.append(self._record(self.group.procs[svc].popen.pid, svc))  # type: ignore[union-attr]

    def service_url(self, svc: str) -> str:
        return self.config.service_url(svc)

    def service_pids(self) -> dict[str, int]:
        procs = [(svc, self.group.procs[svc].popen) for svc in SERVICES if svc in self.group.procs]
        return {svc: popen.pid for svc, popen in procs if popen is not None}

    def token(self, user: str, role: str = "customer") -> str:
        return user_token(self.keys_dir, user, role)

    # ---- gateways ----------------------------------------------------------------------------------

    def gateway_env(self, port: int, *, conflation_ms: int | None = 0, positions: bool = False) -> dict[str, str]:
        namespaces: dict[str, Any] = {}
        if conflation_ms is not None:
            namespaces["stock"] = {"conflation_ms": conflation_ms}
        ns_file = self.tmp / f"namespaces-{port}.json"
        ns_file.write_text(json.dumps({"namespaces": namespaces}))
        env = self.config.gateway_env(port)
        env.update(
            {
                "GATEWAY_ADMIN_PORT": "0",
                "GATEWAY_NAMESPACES_FILE": str(ns_file),
                "GATEWAY_WARM_WINDOW_SECONDS": "0",
                "GATEWAY_MAX_CONNECTS_PER_SECOND": str(self.admission_rate),
                "GATEWAY_DRAIN_SECONDS": "0",
            }
        )
        if not (positions and self.services_up):
            env["GATEWAY_POSITION_URLS"] = ""
        env.update(self.gateway_extra)
        return env

    def start_gateways(
        self, n: int = 1, *, conflation_ms: int | None = 0, positions: bool = False, extra: dict[str, str] | None = None
    ) -> list[GatewayProc]:
        """Start ``n`` fresh gateway processes (stopping any running ones first)."""
        self.stop_gateways()
        for _ in range(n):
            port = free_port()
            self._gateway_seq += 1
            name = f"gateway-{self._gateway_seq}"
            env = self.gateway_env(port, conflation_ms=conflation_ms, positions=positions)
            env.update(extra or {})
            proc = self.group.start(
                name, [sys.executable, "-m", "push_gateway"], env=env, health_url=f"http://127.0.0.1:{port}/readyz"
            )
            assert proc.popen is not None
            self.gateways.append(GatewayProc(name, port, proc.popen.pid, psutil.Process(proc.popen.pid)))
        self.group.wait_healthy(timeout=90)
        if self.profile_dir is not None:
            for gw in self.gateways:
                self._profilers.append(self._record(gw.pid, gw.name))
        time.sleep(0.3)
        return self.gateways

    def _record(self, pid: int, name: str) -> subprocess.Popen[bytes]:
        assert self.profile_dir is not None
        ext = {"speedscope": "json", "raw": "txt"}.get(self.profile_format, "svg")
        return subprocess.Popen(
            [
                _pyspy(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                # native frames (C extensions, uvloop) need py-spy to pause the process per sample
                *(["--native"] if os.environ.get("BENCH_PROFILE_NATIVE") else ["--nonblocking"]),
                "--format",
                self.profile_format if self.profile_format in ("speedscope", "raw") else "flamegraph",
                "-o",
                str(self.profile_dir / f"profile-{name}.{ext}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @staticmethod
    def _stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
        for prof in profilers:  # py-spy writes its profile on SIGINT
            prof.send_signal(signal.SIGINT)
        for prof in profilers:
            try:
                prof.wait(30)
            except subprocess.TimeoutExpired:
                prof.kill()
        profilers.clear()

    def stop_gateways(self) -> None:
        self._stop_profilers(self._profilers)
        for gw in self.gateways:
            self.group.stop(gw.name, timeout=10)
            self.group.procs.pop(gw.name, None)
        self.gateways = []

    def gateway_cpu(self) -> float:
        return sum(g.cpu_seconds() for g in self.gateways)

    def gateway_log_tail(self, n: int = 20) -> list[str]:
        lines: list[str] = []
        for gw in self.gateways:
            proc = self.group.procs.get(gw.name)
            if proc is not None:
                lines += [f"{gw.name}: {line}" for line in proc.lines[-n:]]
        return lines

    # ---- cleanup -----------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.stop_gateways()
            self._stop_profilers(self._service_profilers)
            self.group.stop_all(timeout=15)
        finally:
            if self.dbs is not None:
                self.dbs.drop_all()
            self.vhost.delete()
            shutil.rmtree(self.tmp, ignore_errors=True)
