"""The whole system for cross-service tests: every service and gateway as a real process.

Each run gets its own databases, vhost, keys and ports (flashline_service.testing), so it never
collides with `make run` or another run on the same machine. Tests that break things on purpose
use ``fault_stack``, a second system of their own, and leave it whole again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from flashline_devstack.processes import ProcessGroup
from flashline_devstack.stack import (
    SERVICES,
    StackConfig,
    gateway_name,
    provision,
    start,
    start_gateways,
    start_services,
)

from flashline_service.testing import ThrowawayDatabases, ThrowawayVhosts, free_port, user_token


@dataclass
class Stack:
    config: StackConfig
    group: ProcessGroup
    keys_dir: Path

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    @property
    def amqp_url(self) -> str:
        return self.config.amqp_url

    @property
    def gateway_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{p}/connection/websocket" for p in self.config.gateway_ports]

    def gateway(self, index: int) -> str:
        """The process name of the gateway at ``index``."""
        return gateway_name(self.config, index)

    def token(self, user: str, role: str = "customer", **claims: object) -> str:
        return user_token(self.keys_dir, user, role, **claims)

    def auth(self, user: str, role: str = "customer", **claims: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, role, **claims)}"}

    def kill(self, name: str) -> None:
        """SIGKILL a process (a service or ``gateway(i)``): no drain, no goodbye; wait until it is gone."""
        self.group.signal(name, signal.SIGKILL)
        popen = self.group.procs[name].popen
        assert popen is not None
        popen.wait(10)

    def restart(self, name: str) -> None:
        """Start a stopped process again; returns once it is ready (a service: also consuming)."""
        if name in SERVICES:
            start_services(self.config, self.group, only=name)
        else:
            index = next(i for i in range(len(self.config.gateway_ports)) if self.gateway(i) == name)
            start_gateways(self.config, self.group, only=index)

    def logs(self, name: str) -> list[str]:
        return list(self.group.procs[name].lines)


# Smaller pools than production (10 + 10 overflow each): several systems share one Postgres
# (max_connections 100) during a run. A short payment window lets tests watch orders expire.
_TEST_ENV = {svc: {f"{svc.upper()}_DB_POOL_SIZE": "5"} for svc in SERVICES}
_TEST_ENV["orders"] |= {"ORDERS_PAYMENT_WINDOW_SECONDS": "4", "ORDERS_SWEEP_INTERVAL_SECONDS": "0.5"}


@contextmanager
def launch_stack(
    name: str,
    dev_keys: Path,
    throwaway_databases: ThrowawayDatabases,
    throwaway_vhosts: ThrowawayVhosts,
    *,
    database_urls: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Provision and start a whole system (3 gateways) on its own vhost and databases."""
    vhost_url = throwaway_vhosts.create(name)
    urls = {svc: throwaway_databases.create(f"{name}_{svc}") for svc in SERVICES if svc not in (database_urls or {})}
    config = StackConfig(
        keys_dir=dev_keys,
        vhost=vhost_url.rsplit("/", 1)[1],
        database_urls=urls | (database_urls or {}),
        ports={svc: free_port() for svc in SERVICES},
        gateway_ports=[free_port(), free_port(), free_port()],
        environment="test",
        extra_env=_TEST_ENV,
    )
    provision(config, create_databases=False)
    group = ProcessGroup(echo=False)
    try:
        start(config, group)
    except Exception:
        for proc in group.procs.values():
            print(f"--- {proc.name}\n" + "\n".join(proc.lines[-40:]))
        group.stop_all()
        raise
    try:
        yield Stack(config, group, dev_keys)
    finally:
        group.stop_all()


@pytest.fixture(scope="session")
def stack(
    dev_keys: Path, throwaway_databases: ThrowawayDatabases, throwaway_vhosts: ThrowawayVhosts
) -> Iterator[Stack]:
    with launch_stack("stack", dev_keys, throwaway_databases, throwaway_vhosts) as stack:
        yield stack


@pytest.fixture(scope="session")
def fault_stack(
    dev_keys: Path, throwaway_databases: ThrowawayDatabases, throwaway_vhosts: ThrowawayVhosts
) -> Iterator[Stack]:
    """A system of its own for fault tests; each test leaves every process running and the broker open."""
    with launch_stack("faults", dev_keys, throwaway_databases, throwaway_vhosts) as stack:
        yield stack


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[object]], *, timeout: float = 15.0, interval: float = 0.1) -> object:
    """Poll ``check`` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
