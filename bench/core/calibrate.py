"""A fixed CPU workload, timed at the start and the end of a run: how fast the machine was.

The figures of a run on a shared 2-core VM move by a third from one hour to the next with the
same code (noisy neighbours). The workload is the gateway's own connect path without sockets
(a session, an RS256 user token checked, connect + subscribe answered), so a reader can tell
a slower machine from slower code: compare the figures of two runs with their references.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from flashline_auth import KeySet, TokenVerifier
from flashline_auth.dev import ensure_dev_keys
from flashline_auth.dev_identity import user_token
from push_gateway.auth import Authorizer
from push_gateway.metrics import Metrics
from push_gateway.namespaces import Namespaces
from push_gateway.node import Node
from push_gateway.protocol.session import Limits, Session

CONNECTS = 400
ROUNDS = 5


class _Sink:
    """A transport that keeps nothing."""

    def write(self, data: bytes) -> None:
        pass

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        pass


class Reference:
    """The workload, built once (keys, tokens, a node) and timed as often as asked."""

    def __init__(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            keys = ensure_dev_keys(Path(folder))
            verifier = TokenVerifier(KeySet.load(keys / "trusted.json"), audience="flashline")
            self._node = Node(
                node_id="calibration",
                authorizer=Authorizer(verifier, Namespaces.build(None, {})),
                limits=Limits(),
                metrics=Metrics(),
                schedule=lambda fn: None,
                call_later=lambda delay, fn: None,
            )
            self._frames = [
                orjson.dumps({"id": 1, "connect": {"token": user_token(str(keys), user=f"u{i}", ttl_seconds=86_400)}})
                + b"\n"
                + orjson.dumps({"id": 2, "subscribe": {"channel": f"stock:{i % 100}"}})
                for i in range(CONNECTS)
            ]

    def time_us(self) -> float:
        """Microseconds per sans-I/O connect + subscribe with an RS256 token: the best of a few rounds."""
        best = float("inf")
        for round_ in range(ROUNDS + 1):  # the first warms up (caches, the allocator) and is not counted
            now = time.time()
            started = time.perf_counter()
            for frame in self._frames:
                session = Session(self._node, _Sink(), now)
                self._node.opened(session)
                session.receive(frame, now)
                session.close(1000)
            if round_:
                best = min(best, (time.perf_counter() - started) / CONNECTS * 1e6)
        return round(best, 1)


class MachineWatch:
    """The reference at the start and the end of a run, and the share of CPU time the hypervisor
    took for other guests meanwhile (``steal``: on this VM it reached a quarter in some hours)."""

    def __init__(self) -> None:
        self._reference = Reference()
        self.start_us = self._reference.time_us()
        self._cpu = psutil.cpu_times()

    def finish(self) -> dict[str, Any]:
        cpu = psutil.cpu_times()
        total = sum(cpu) - sum(self._cpu)
        steal = getattr(cpu, "steal", 0.0) - getattr(self._cpu, "steal", 0.0)
        return {
            "reference_connect_sans_io_us": {"start": self.start_us, "end": self._reference.time_us()},
            "steal_pct": round(100 * steal / total, 1) if total > 0 else None,
        }
