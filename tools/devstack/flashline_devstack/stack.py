"""The whole system as one configuration: which processes, which ports, which databases.

``make run`` uses the development defaults; tests/integration builds a config pointing at its
throwaway databases and vhost and different ports, so both can run on one machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from flashline_auth.dev import ensure_dev_keys
from flashline_devstack import infra
from flashline_devstack.processes import ProcessGroup

SERVICES = ("catalog", "orders", "cart")
# demo/storefront when this package is used from the repository (an editable install)
STOREFRONT_SOURCE = Path(__file__).resolve().parents[3] / "demo" / "storefront"
POSITION_NAMESPACES = {"stock": "catalog", "order": "orders", "user": "orders", "tenant": "orders", "cart": "cart"}


@dataclass
class StackConfig:
    keys_dir: Path = Path(".dev/keys")
    vhost: str = "flashline-dev"
    amqp_base: str = "amqp://guest:guest@127.0.0.1:5672"
    database_urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: {"catalog": 8001, "orders": 8002, "cart": 8003})
    gateway_ports: list[int] = field(default_factory=lambda: [8000])
    storefront_port: int | None = None
    environment: str = "development"
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def amqp_url(self) -> str:
        return f"{self.amqp_base}/{quote(self.vhost, safe='')}"

    def database_url(self, service: str) -> str:
        return self.database_urls.get(
            service, f"postgresql+asyncpg://{service}:{service}-dev-password@127.0.0.1:5432/flashline_{service}"
        )

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def storefront_url(self) -> str | None:
        return f"http://127.0.0.1:{self.storefront_port}" if self.storefront_port else None

    def storefront_origins(self) -> list[str]:
        return [f"http://{host}:{self.storefront_port}" for host in ("127.0.0.1", "localhost")]

    def common_env(self) -> dict[str, str]:
        return {
            "FLASHLINE_ENV": self.environment,
            "FLASHLINE_TRUSTED_KEYS_FILE": str(self.keys_dir / "trusted.json"),
            "FLASHLINE_DEV_KEYS_DIR": str(self.keys_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def service_env(self, service: str) -> dict[str, str]:
        prefix = service.upper() + "_"
        env = {
            **self.common_env(),
            f"{prefix}PORT": str(self.ports[service]),
            f"{prefix}DATABASE_URL": self.database_url(service),
            f"{prefix}AMQP_URL": self.amqp_url,
            f"{prefix}SIGNING_KEY_FILE": str(self.keys_dir / f"{service}.pem"),
            f"{prefix}SIGNING_KEY_ID": f"dev-{service}-1",
        }
        if self.storefront_port and self.storefront_port != 8080:  # the services' defaults admit :8080
            env[f"{prefix}CORS_ORIGINS"] = json.dumps(self.storefront_origins())
        env.update(self.extra_env.get(service, {}))
        return env

    def gateway_env(self, port: int) -> dict[str, str]:
        positions = ",".join(f"{ns}={self.service_url(svc)}" for ns, svc in POSITION_NAMESPACES.items())
        env = {
            **self.common_env(),
            "GATEWAY_PORT": str(port),
            "GATEWAY_ADMIN_PORT": str(port + 1000),
            "GATEWAY_AMQP_URL": self.amqp_url,
            "GATEWAY_POSITION_URLS": positions,
            "GATEWAY_NODE_NAME": f"gateway-{port}",
            # Locally Ctrl-C should not wait out a production-length drain (stop_all allows 15 s).
            "GATEWAY_DRAIN_SECONDS": "3",
        }
        env.update(self.extra_env.get("gateway", {}))
        return env

    def storefront_env(self) -> dict[str, str]:
        env = {
            **self.common_env(),
            "STOREFRONT_PORT": str(self.storefront_port),
            "STOREFRONT_CATALOG_URL": self.service_url("catalog"),
            "STOREFRONT_ORDERS_URL": self.service_url("orders"),
            "STOREFRONT_CART_URL": self.service_url("cart"),
            "STOREFRONT_GATEWAY_URLS": ",".join(
                f"ws://127.0.0.1:{port}/connection/websocket" for port in self.gateway_ports
            ),
        }
        if importlib.util.find_spec("storefront") is None and STOREFRONT_SOURCE.is_dir():
            # not installed into this virtualenv: run it from the repository
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(STOREFRONT_SOURCE), os.environ.get("PYTHONPATH")) if p)
        env.update(self.extra_env.get("storefront", {}))
        return env


def provision(config: StackConfig, *, create_databases: bool = True) -> None:
    """Infrastructure up, one database and role per service, the vhost, dev keys, migrations."""
    infra.ensure_postgres()
    infra.ensure_rabbitmq()
    infra.ensure_vhost(config.vhost)
    ensure_dev_keys(config.keys_dir)
    for service in SERVICES:
        if create_databases:
            infra.ensure_database(service, f"{service}-dev-password", f"flashline_{service}")
        subprocess.run(
            [sys.executable, "-m", service, "migrate"], env={**_os_env(), **config.service_env(service)}, check=True
        )


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def consuming(readyz_body: bytes) -> bool:
    """A service is up once its consumer queue is bound: an event published before that is lost."""
    return bool(json.loads(readyz_body).get("checks", {}).get("broker"))


def start(config: StackConfig, group: ProcessGroup) -> None:
    """Start every service and gateway (and the storefront if it has a port); returns once all are up."""
    start_services(config, group)
    start_gateways(config, group)
    if config.storefront_port:
        start_storefront(config, group)


def start_services(config: StackConfig, group: ProcessGroup, *, only: str | None = None) -> None:
    """Start catalog, orders and cart (or just ``only``, e.g. to restart it); returns once ready and consuming."""
    for service in SERVICES:
        if only is not None and service != only:
            continue
        group.start(
            service,
            [sys.executable, "-m", service],
            env=config.service_env(service),
            health_url=f"{config.service_url(service)}/readyz",
            ready=consuming,
        )
    group.wait_healthy(timeout=90)


def gateway_name(config: StackConfig, index: int) -> str:
    return "gateway" if len(config.gateway_ports) == 1 else f"gateway-{index + 1}"


def start_gateways(config: StackConfig, group: ProcessGroup, *, only: int | None = None) -> None:
    """Start the gateway processes (or the one at index ``only``, e.g. to restart it) and wait until healthy."""
    for i, port in enumerate(config.gateway_ports):
        if only is not None and i != only:
            continue
        group.start(
            gateway_name(config, i),
            [sys.executable, "-m", "push_gateway"],
            env=config.gateway_env(port),
            health_url=f"http://127.0.0.1:{port}/healthz",
        )
    group.wait_healthy(timeout=90)


def start_storefront(config: StackConfig, group: ProcessGroup) -> None:
    """The storefront demo (it builds its bundle first if that is missing or stale); after the services."""
    group.start(
        "storefront",
        [sys.executable, "-m", "storefront"],
        env=config.storefront_env(),
        health_url=f"{config.storefront_url}/healthz",
    )
    group.wait_healthy(timeout=90)


def seed(config: StackConfig) -> None:
    """Demo products through the catalog API (idempotent: existing skus are left alone)."""
    subprocess.run(
        [sys.executable, "-m", "storefront", "seed"], env={**_os_env(), **config.storefront_env()}, check=True
    )
