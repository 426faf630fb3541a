"""Make sure PostgreSQL and RabbitMQ are up (start them if installed and stopped) and provisioned."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import time

import asyncpg

PG_ADMIN_DSN = os.environ.get("FLASHLINE_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


class InfrastructureMissing(RuntimeError):
    """A required server is neither running nor installed here."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_for(port: int, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise InfrastructureMissing(f"{what} did not come up on port {port} within {timeout:.0f}s")
        time.sleep(0.5)


def ensure_postgres() -> None:
    if port_open(5432):
        return
    ctl = shutil.which("pg_ctlcluster")
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not ctl or not versions:
        raise InfrastructureMissing(
            "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here; install PostgreSQL 15+ "
            "(trust or password auth for user postgres) and start it"
        )
    print(f"starting PostgreSQL {versions[-1]} ...", flush=True)
    subprocess.run([ctl, "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    _wait_for(5432, "PostgreSQL", 30)


def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([ctl, *args], check=check, capture_output=True, text=True, timeout=120)


def ensure_rabbitmq() -> None:
    if port_open(5672):
        return
    server = shutil.which("rabbitmq-server") or (
        "/usr/sbin/rabbitmq-server" if os.path.exists("/usr/sbin/rabbitmq-server") else None
    )
    if not server:
        raise InfrastructureMissing(
            "RabbitMQ is not running on 127.0.0.1:5672 and is not installed here; install RabbitMQ 3.10+ and start it"
        )
    print("starting RabbitMQ ...", flush=True)
    subprocess.run([server, "-detached"], check=False)
    _wait_for(5672, "RabbitMQ", 90)
    rabbitmqctl("await_startup", check=False)


def ensure_vhost(vhost: str, user: str = "guest") -> None:
    rabbitmqctl("add_vhost", vhost, check=False)  # fails harmlessly if it exists
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


async def _ensure_database(role: str, password: str, database: str, admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
    finally:
        await conn.close()


def ensure_database(role: str, password: str, database: str, *, admin_dsn: str | None = None) -> None:
    """One role and one database per service: no service can read another's tables.

    ``admin_dsn``: a superuser connection to the server to make them on (default: the local one).
    """
    asyncio.run(_ensure_database(role, password, database, admin_dsn or PG_ADMIN_DSN))
