"""What a service runs beside its HTTP API: the outbox relay and the event consumer.

Both start in the app's lifespan and stop with it. Neither blocks startup on the broker: if
RabbitMQ is down, the API still serves (writes land in the outbox) and readiness says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from flashline_messaging.amqp import ConfirmedPublisher, connect
from flashline_messaging.inbox import purge_processed
from flashline_messaging.rabbitmq import RabbitMQEventBus
from flashline_messaging.relay import OutboxRelay
from flashline_service.database import Database
from flashline_service.settings import ServiceSettings

log = logging.getLogger("flashline.runtime")

BusSetup = Callable[[RabbitMQEventBus], None]


class MessagingRuntime:
    def __init__(self, settings: ServiceSettings, db: Database, *, subscribe: BusSetup | None = None) -> None:
        self._settings = settings
        self._db = db
        self._subscribe = subscribe
        self.bus = RabbitMQEventBus(
            settings.amqp_url, service=settings.service_name, prefetch=settings.consumer_prefetch
        )
        self.relay: OutboxRelay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bus_started = asyncio.Event()

    async def start(self) -> None:
        if self._subscribe is not None:
            self._subscribe(self.bus)
            self._tasks.append(asyncio.create_task(self._start_bus(), name="bus-start"))
        self._tasks.append(asyncio.create_task(self._run_relay(), name="outbox-relay"))
        self._tasks.append(asyncio.create_task(self._purge_inbox(), name="inbox-retention"))

    async def _purge_inbox(self) -> None:
        retention = timedelta(hours=self._settings.inbox_retention_hours)
        while True:
            await asyncio.sleep(300)
            try:
                removed = await purge_processed(self._db.sessions, older_than=retention)
                if removed:
                    log.info("forgot %d processed event ids older than %s", removed, retention)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried at the next interval
                log.warning("inbox retention sweep failed: %s", exc)

    async def _start_bus(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.bus.start()
                self._bus_started.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker not up yet: keep trying
                log.warning("consumer cannot start yet (%s); retrying in %.1fs", exc, delay)
                await self.bus.stop(grace=0)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _run_relay(self) -> None:
        delay = 0.5
        while True:
            try:
                connection = await connect(self._settings.amqp_url, name=f"{self._settings.service_name}-relay")
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("relay cannot reach the broker (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self.relay = OutboxRelay(
            self._db.engine,
            ConfirmedPublisher(connection),
            service=self._settings.service_name,
            database_url=self._settings.database_url,
            batch_size=self._settings.relay_batch_size,
        )
        relay = self.relay
        connection.reconnect_callbacks.add(lambda *_: relay.wake())  # publish what waited, at once
        try:
            await self.relay.run()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def broker_ready(self) -> bool:
        if self._subscribe is not None and not self._bus_started.is_set():
            return False
        return self._subscribe is None or self.bus.is_connected

    async def stop(self) -> None:
        await self.bus.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
