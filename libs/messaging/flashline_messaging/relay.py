"""The outbox relay: publishes committed outbox rows, in id order, until RabbitMQ confirms them.

One relay per service is the leader at a time (a Postgres advisory lock), so rows leave in the
order they were written, which per aggregate and per channel is commit order (writers of one
aggregate or channel serialize on its row lock). A batch's rows for one destination travel as one
message, each aggregate's and channel's in order (``outbound``). Rows are deleted only after their
confirm; a broker outage just leaves them waiting, with backoff between attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections.abc import Sequence
from typing import Protocol

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from flashline_messaging.amqp import OutboundMessage
from flashline_messaging.outbound import outbound_messages
from flashline_messaging.outbox import NOTIFY_CHANNEL

log = logging.getLogger("flashline.relay")

OUTBOX_PENDING = Gauge("flashline_outbox_pending", "Outbox rows waiting for a broker confirm", ["service"])
OUTBOX_PUBLISHED = Counter("flashline_outbox_published_total", "Outbox rows confirmed by the broker", ["service"])
OUTBOX_FAILURES = Counter("flashline_outbox_publish_failures_total", "Failed publish attempts", ["service"])


# The outbox table of flashline_messaging.schema, in plain SQL for the leader's asyncpg connection.
_PENDING = "SELECT id, exchange, routing_key, message_id, body FROM outbox ORDER BY id LIMIT $1"
_CONFIRMED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


class PublishFailed(Exception):
    """The broker did not confirm a batch; its rows stay in the outbox."""


class BatchPublisher(Protocol):
    async def publish(self, messages: Sequence[OutboundMessage]) -> None: ...


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq DSN asyncpg wants, from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxRelay:
    """Run ``run()`` as a background task; cancel it to stop."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: BatchPublisher,
        *,
        service: str,
        database_url: str,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 10.0,
        max_publish_backoff: float = 2.0,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._service = service
        self._dsn = asyncpg_dsn(database_url)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._max_publish_backoff = max_publish_backoff  # short: wake() also ends a wait when the broker is back
        self._lock_key = zlib.crc32(f"flashline-relay:{service}".encode())
        self._wakeup = asyncio.Event()
        self.is_leader = False

    async def run(self) -> None:
        backoff = 0.1
        while True:
            lock_conn: asyncpg.Connection | None = None
            try:
                lock_conn = await asyncpg.connect(self._dsn, timeout=5)
                if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                    await asyncio.sleep(self._poll_interval * 2)  # another replica leads
                    continue
                await lock_conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.is_leader = True
                log.info("relay leader for %s", self._service)
                await self._lead(lock_conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive every fault
                log.warning("relay for %s: %s; retrying in %.1fs", self._service, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                self.is_leader = False
                if lock_conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(lock_conn.close(timeout=2))

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    def wake(self) -> None:
        """Look for rows now (tests and shutdown use it)."""
        self._wakeup.set()

    async def _lead(self, lock_conn: asyncpg.Connection) -> None:
        backoff = 0.1
        while not lock_conn.is_closed():
            self._wakeup.clear()
            try:
                sent = await self.publish_pending(lock_conn)
                backoff = 0.1
            except PublishFailed as exc:  # database errors propagate: run() reconnects
                OUTBOX_FAILURES.labels(self._service).inc()
                log.warning("relay publish failed (%s); retrying in %.1fs", exc, backoff)
                # wake() (the broker connection came back) cuts the wait short.
                await self._wait_for_wakeup(backoff * (0.5 + random.random()))
                self._wakeup.clear()
                backoff = min(backoff * 2, self._max_publish_backoff)
                continue
            if sent < self._batch_size:
                await self._wait_for_wakeup(self._poll_interval)

    async def _wait_for_wakeup(self, seconds: float) -> None:
        """Until ``wake()`` or a NOTIFY, or ``seconds`` pass.

        ``asyncio.timeout``, not ``wait_for``: Python 3.11's ``wait_for`` drops a cancellation
        that lands as the wake-up does (gh-86296), and the relay's task would then never stop.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    async def publish_pending(self, conn: asyncpg.Connection | None = None) -> int:
        """Publish one batch of pending rows; returns how many were confirmed and removed.

        The leader passes its own connection (the one holding the lock and listening), so a
        wake-up costs one SELECT before the publish: no pool checkout, pre-ping and BEGIN round
        trips, each a hop through a busy Postgres, between a commit and its publication.
        Rows are deleted after their confirm; without a transaction around the wait (the lock
        already makes this relay the only one deleting).
        """
        if conn is None:  # not leading (tests, tools): a connection of the service's pool
            async with self._engine.connect() as pooled:
                raw = await pooled.get_raw_connection()
                return await self.publish_pending(raw.driver_connection)
        rows = await conn.fetch(_PENDING, self._batch_size)
        OUTBOX_PENDING.labels(self._service).set(len(rows))
        if not rows:
            return 0
        messages = outbound_messages(rows)
        try:
            await self._publisher.publish(messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise PublishFailed(str(exc) or type(exc).__name__) from exc
        await conn.execute(_CONFIRMED, [r["id"] for r in rows])
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)
