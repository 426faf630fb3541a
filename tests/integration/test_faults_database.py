"""The orders service's own Postgres stops mid-flow and comes back.

Orders is the service to break: its writes are the richest (order, lines, history, idempotency
key and outbox rows in one transaction), and it runs every kind of database user at once: the
REST API, the outbox relay (with its advisory-lock connection and LISTEN), the saga consumer and
the expiry sweeper. Its database lives on a throwaway Postgres cluster made for this test only
(the shared server is never stopped); the rest of the system uses the shared server.

While the cluster is down: requests fail fast with 503 and a clear body (well under the client's
timeout), readiness says not ready, nothing is half-written. Once it is back, the same process
serves again, its relay publishes what waited in the outbox and its consumer resumes the saga.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from flashline_devstack import infra

from flashline_service.testing import ThrowawayDatabases, ThrowawayVhosts, free_port

from .clients import create_product
from .conftest import Stack, eventually, launch_stack
from .faults import broker_outage, outbox_rows, query

CLIENT_TIMEOUT = 10.0


@dataclass
class Cluster:
    version: str
    name: str
    port: int

    def ctl(self, action: str, *args: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action, *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        self.ctl("stop", "-m", "fast")

    def start(self) -> None:
        self.ctl("start")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Postgres cluster of its own on a free port, trust auth on local TCP; dropped afterwards."""
    versions = sorted((os.path.basename(p) for p in glob.glob("/etc/postgresql/*")), key=float)
    if not (shutil.which("pg_createcluster") and shutil.which("pg_ctlcluster") and versions):
        pytest.skip("needs the Debian PostgreSQL cluster tools (pg_createcluster) to make a throwaway cluster")
    made = Cluster(versions[-1], f"flt{uuid.uuid4().hex[:8]}", free_port())
    initdb = ["--auth-host=trust", "--auth-local=trust"]
    subprocess.run(
        ["pg_createcluster", made.version, made.name, "-p", str(made.port), "--start", "--", *initdb],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        hba = Path(f"/etc/postgresql/{made.version}/{made.name}/pg_hba.conf").read_text()
        rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
        assert ["host", "all", "all", "127.0.0.1/32", "trust"] in rules, hba
        yield made
    finally:
        subprocess.run(
            ["pg_dropcluster", made.version, made.name, "--stop"], check=False, capture_output=True, timeout=120
        )


@pytest.fixture
def db_stack(
    cluster: Cluster, dev_keys: Path, throwaway_databases: ThrowawayDatabases, throwaway_vhosts: ThrowawayVhosts
) -> Iterator[Stack]:
    # The orders role and database, made the way tools/devstack makes them, on the throwaway cluster.
    admin = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    infra.ensure_database("orders", "orders-dev-password", "flashline_orders", admin_dsn=admin)
    url = f"postgresql+asyncpg://orders:orders-dev-password@127.0.0.1:{cluster.port}/flashline_orders"
    with launch_stack("dbfault", dev_keys, throwaway_databases, throwaway_vhosts, database_urls={"orders": url}) as s:
        yield s


@dataclass
class Call:
    kind: str
    started: float
    elapsed: float
    status: int
    body: Any
    headers: dict[str, str]
    key: str = ""


@dataclass
class Load:
    """Customers placing and reading orders, continuously, from a few concurrent workers."""

    http: httpx.AsyncClient
    stack: Stack
    product_id: int
    user: str
    calls: list[Call] = field(default_factory=list)
    stopping: bool = False

    async def call(self, kind: str, method: str, url: str, key: str = "", **kwargs: Any) -> Call:
        started = time.monotonic()
        response = await self.http.request(method, url, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        call = Call(kind, started, time.monotonic() - started, response.status_code, body, dict(response.headers), key)
        self.calls.append(call)
        return call

    async def place(self, key: str) -> Call:
        return await self.call(
            "place",
            "POST",
            f"{self.stack.url('orders')}/orders",
            key,
            json={"items": [{"product_id": self.product_id, "quantity": 1}]},
            headers={**self.stack.auth(self.user), "Idempotency-Key": key},
        )

    async def worker(self) -> None:
        while not self.stopping:
            placed = await self.place(uuid.uuid4().hex)
            if placed.status == 202:
                await self.call(
                    "read",
                    "GET",
                    f"{self.stack.url('orders')}/orders/{placed.body['id']}",
                    headers=self.stack.auth(self.user),
                )
            await asyncio.sleep(0.05)


async def test_orders_database_restart_mid_flow(http: httpx.AsyncClient, db_stack: Stack, cluster: Cluster) -> None:
    stack = db_stack
    proc = stack.group.procs["orders"].popen
    assert proc is not None
    pid = proc.pid
    product = await create_product(http, stack, stock=10_000, price_cents=700)
    user = f"db-{uuid.uuid4().hex[:8]}"
    load = Load(http, stack, product["id"], user)

    async def orders_knows_product() -> bool:
        return (await load.place(uuid.uuid4().hex)).status == 202

    await eventually(orders_knows_product)
    del load.calls[:-1]  # keep the 202; the refusals before orders learnt the product are not the subject

    # The broker goes first, so orders wait in the outbox while the database is down under them.
    async with broker_outage(stack):
        waiting = [await load.place(uuid.uuid4().hex) for _ in range(3)]
        assert [c.status for c in waiting] == [202] * 3
        assert await outbox_rows(stack, "orders") >= 3
        workers = [asyncio.create_task(load.worker()) for _ in range(3)]
        await asyncio.sleep(0.5)
        down_at = time.monotonic()
        await asyncio.to_thread(cluster.stop)
        stopped_at = time.monotonic()
        await asyncio.sleep(1.0)
        readiness_started = time.monotonic()
        readiness = await http.get(f"{stack.url('orders')}/readyz")
        readiness_took = time.monotonic() - readiness_started
        await asyncio.sleep(2.0)
    # The broker is back; the database is not yet.
    await asyncio.sleep(0.5)
    up_at = time.monotonic()
    await asyncio.to_thread(cluster.start)
    started_at = time.monotonic()

    async def serving() -> bool:
        return any(c.started > started_at and c.status == 202 for c in load.calls)

    await eventually(serving, timeout=15)
    await asyncio.sleep(1.0)
    load.stopping = True
    await asyncio.gather(*workers)

    # While it was down: not ready, and every request answered fast with a clear 503.
    assert readiness.status_code == 503, readiness.text
    assert readiness.json()["checks"]["database"] is False and readiness.json()["ready"] is False
    assert readiness_took < 3.0
    outage = [c for c in load.calls if c.started >= stopped_at and c.started + c.elapsed <= up_at]
    assert len(outage) >= 10, f"only {len(outage)} requests during the outage"
    for c in outage:
        assert c.status == 503, (c.kind, c.status, c.body)
    for c in (c for c in load.calls if c.status == 503):
        assert c.body == {"detail": "service temporarily unavailable"}, c.body
        assert c.headers.get("retry-after") == "1"
    slowest = max(c.elapsed for c in load.calls if c.started >= down_at)
    assert slowest < CLIENT_TIMEOUT / 2, f"a request took {slowest:.2f}s during the outage"
    print(f"outage: {len(outage)} requests, all 503; slowest request from the stop on {slowest:.3f}s")
    assert all(c.status in (200, 202, 503) for c in load.calls), sorted({c.status for c in load.calls})

    # The same process came back by itself.
    assert proc.poll() is None and stack.group.procs["orders"].popen is proc and proc.pid == pid
    ready = await http.get(f"{stack.url('orders')}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "broker": True}, ready.text

    # A client retries each refused order with its key: each key ends with exactly one order.
    for c in [c for c in load.calls if c.kind == "place" and c.status == 503]:
        retried = await load.place(c.key)
        assert retried.status == 202, retried.body
    keys = await query(stack, "orders", "SELECT key, order_id FROM idempotency_keys WHERE user_id = $1", user)
    placed = {c.key: c.body["id"] for c in load.calls if c.kind == "place" and c.status == 202}
    assert {r["key"]: r["order_id"] for r in keys} == placed

    # Nothing half-written: every order has its line and its history, and nothing else exists.
    rows = await query(
        stack,
        "orders",
        """SELECT o.id, o.status, count(DISTINCT l.product_id) AS lines, count(DISTINCT h.version) AS history
           FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id LEFT JOIN order_history h ON h.order_id = o.id
           WHERE o.user_id = $1 GROUP BY o.id""",
        user,
    )
    assert sorted(r["id"] for r in rows) == sorted(set(placed.values()))
    assert all(r["lines"] == 1 and r["history"] >= 1 for r in rows), [dict(r) for r in rows if r["lines"] != 1]

    # The relay published what waited (the outbox drains) and the saga resumed: every order was
    # confirmed (the earliest may have expired since: the payment window is 4 s on this stack).
    async def all_decided() -> bool:
        statuses = await query(stack, "orders", "SELECT status FROM orders WHERE user_id = $1", user)
        return all(r["status"] in ("confirmed", "expired") for r in statuses)

    await eventually(all_decided, timeout=30)
    confirmed = await query(
        stack,
        "orders",
        """SELECT count(DISTINCT o.id) AS n FROM orders o JOIN order_history h ON h.order_id = o.id
           WHERE o.user_id = $1 AND h.status = 'confirmed'""",
        user,
    )
    assert confirmed[0]["n"] == len(rows)

    # Expiries keep writing outbox rows for a few seconds (4 s payment window): it drains to empty.
    async def drained() -> bool:
        return await outbox_rows(stack, "orders") == 0

    await eventually(drained, timeout=30)
