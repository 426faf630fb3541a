"""Pytest plugin: a throwaway RabbitMQ vhost and Postgres databases per test run.

Runs never collide (each gets its own names) and leave nothing behind. Loaded automatically
through the ``pytest11`` entry point of this package.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest

from flashline_contracts.batches import documents
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE

# CPython 3.11.7 can fail to compile a module imported from deep inside pytest's terminal summary
# ("SystemError: AST constructor recursion depth mismatch"), which hypothesis does lazily there.
# Importing those internals now, from a shallow stack, sidesteps the interpreter bug.
try:
    import hypothesis.internal.conjecture.providers  # noqa: F401
except ImportError:  # hypothesis is a test dependency, not a runtime one
    pass

PG_ADMIN_DSN = os.environ.get("FLASHLINE_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("FLASHLINE_TEST_PG_HOST", "postgres@127.0.0.1:5432")
AMQP_BASE = os.environ.get("FLASHLINE_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
AMQP_USER = os.environ.get("FLASHLINE_TEST_AMQP_USER", "guest")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


class ThrowawayVhost:
    """A RabbitMQ vhost created for this run and deleted after it."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def url(self) -> str:
        return f"{AMQP_BASE}/{quote(self.name, safe='')}"

    def create(self) -> None:
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl("set_permissions", "-p", self.name, AMQP_USER, ".*", ".*", ".*")

    def delete(self) -> None:
        try:
            _rabbitmqctl("delete_vhost", self.name)
        except subprocess.CalledProcessError:
            pass


async def _admin_async(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(sql: str) -> None:
    """Run admin SQL on a worker thread, so callers may be sync or inside an event loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_async(sql)).result()


class ThrowawayDatabases:
    """Postgres databases made on demand for this run, dropped at its end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.created: list[str] = []

    def create(self, name: str) -> str:
        """Create ``<prefix>_<name>`` and return its SQLAlchemy asyncpg URL."""
        db = f"{self.prefix}_{name}"
        _admin(f'CREATE DATABASE "{db}"')
        self.created.append(db)
        return f"postgresql+asyncpg://{PG_HOST}/{db}"

    def drop_all(self) -> None:
        for db in self.created:
            try:
                _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def throwaway_vhost(run_id: str) -> Iterator[ThrowawayVhost]:
    vhost = ThrowawayVhost(f"flashline-test-{run_id}")
    vhost.create()
    yield vhost
    vhost.delete()


@pytest.fixture(scope="session")
def amqp_url(throwaway_vhost: ThrowawayVhost) -> str:
    """AMQP URL of this run's own vhost."""
    return throwaway_vhost.url


@pytest.fixture(scope="session")
def throwaway_databases(run_id: str) -> Iterator[ThrowawayDatabases]:
    dbs = ThrowawayDatabases(f"flashline_test_{run_id}")
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory):
    """A fresh development key ring (identity, catalog, orders, cart) for this run."""
    from flashline_auth.dev import ensure_dev_keys

    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


def migrated_database(dbs: ThrowawayDatabases, name: str, migrations_dir: os.PathLike[str] | str) -> str:
    """Create a throwaway database and apply a service's migrations to it; returns its URL."""
    from pathlib import Path

    from flashline_service.migrations import upgrade

    url = dbs.create(name)
    upgrade(Path(migrations_dir), url)
    return url


def user_token(keys_dir: os.PathLike[str] | str, user: str, role: str = "customer", **kwargs: object) -> str:
    """A dev identity token for tests."""
    from flashline_auth.dev_identity import user_token as mint

    return mint(str(keys_dir), user=user, role=role, **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def app_client(app, *, wait_for_consumer: bool = True):
    """Run the app's lifespan in-process and yield an httpx client bound to it.

    The consumer starts in the background; an event published before its queue bindings exist
    is routed nowhere, so by default this waits until the app is consuming. Pass
    ``wait_for_consumer=False`` for an app started against a broker that is down on purpose.
    """
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            if wait_for_consumer:
                await consuming(client)
            yield client


class ThrowawayVhosts:
    """Extra vhosts on demand, for suites that must not share queues with the rest of the run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[ThrowawayVhost] = []

    def create(self, name: str) -> str:
        vhost = ThrowawayVhost(f"{self.prefix}-{name}-{uuid.uuid4().hex[:6]}")
        vhost.create()
        self.made.append(vhost)
        return vhost.url

    def delete_all(self) -> None:
        for vhost in self.made:
            vhost.delete()


@pytest.fixture(scope="session")
def throwaway_vhosts(run_id: str) -> Iterator[ThrowawayVhosts]:
    """``throwaway_vhosts.create("catalog")`` -> the AMQP URL of a new vhost, deleted after the run."""
    vhosts = ThrowawayVhosts(f"flashline-test-{run_id}")
    yield vhosts
    vhosts.delete_all()


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


class Pause:
    """A point where a race test holds a transaction open (its locks taken, nothing committed).

    The transaction awaits ``hold()``: the first time it stops there, sets ``reached`` and waits
    until the test lets it go. Later calls pass straight through.
    """

    SETTLE = 0.3  # long enough for an unblocked transaction to finish; the checks hold for any value

    def __init__(self) -> None:
        self.reached, self._go = asyncio.Event(), asyncio.Event()

    async def hold(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            await self._go.wait()

    async def waits_then_release(self, blocked: asyncio.Task[Any], why: str) -> None:
        """Check that ``blocked`` still waits on the held transaction, then let that one finish."""
        await asyncio.sleep(self.SETTLE)
        assert not blocked.done(), why
        self._go.set()


async def consuming(client: Any) -> None:
    """Wait until an app started with ``app_client`` has bound its consumer queue.

    The consumer starts in the background; an event published before its bindings exist is
    routed nowhere, so tests that publish right after startup wait for this first.
    """

    async def ready() -> bool:
        return (await client.get("/readyz")).json()["checks"].get("broker") is True

    await eventually(ready)


class Tap:
    """A private queue on the events exchange (or the push fanout) collecting what is published."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._connection: Any = None

    @classmethod
    async def open(cls, amqp_url: str, routing_keys: list[str], *, exchange: str = EVENTS_EXCHANGE) -> Tap:
        import aio_pika
        import orjson

        tap = cls()
        tap._connection = await aio_pika.connect_robust(amqp_url)
        channel = await tap._connection.channel()
        kind = aio_pika.ExchangeType.FANOUT if exchange == PUSH_EXCHANGE else aio_pika.ExchangeType.TOPIC
        ex = await channel.declare_exchange(exchange, kind, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        for key in routing_keys:
            await queue.bind(ex, routing_key=key)

        async def collect(message: Any) -> None:
            tap.messages.extend(documents(orjson.loads(message.body)))  # a push message may be a batch
            await message.ack()

        await queue.consume(collect)
        return tap

    def payloads(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        """Payloads of collected integration events of ``event_type`` whose fields match ``match``."""
        return [
            m["payload"]
            for m in self.messages
            if m.get("type") == event_type and all(m["payload"].get(k) == v for k, v in match.items())
        ]

    def publications(self, channel: str) -> list[dict[str, Any]]:
        """Push publications of ``channel`` (a tap on the push exchange), in arrival order."""
        return [m for m in self.messages if m.get("channel") == channel]

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
