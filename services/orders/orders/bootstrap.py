"""The one place that wires orders: settings -> units of work, handlers, consumers, sweeper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from flashline_messaging.bus import EventBus
from flashline_service.app import create_service_app
from orders.entrypoints import background, consumers
from orders.entrypoints.api import errors, orders, tenants
from orders.service_layer.integration import OutboxWriter
from orders.service_layer.placements import Placements
from orders.service_layer.unit_of_work import Clock, SqlUnitOfWork
from orders.settings import OrdersSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_app(settings: OrdersSettings, *, clock: Clock = utc_now) -> FastAPI:
    writer = OutboxWriter(producer=settings.service_name)

    # The database exists only inside the lifespan (app.state.db), so these read it when called.
    def unit_of_work() -> SqlUnitOfWork:
        return SqlUnitOfWork(writer, clock, sessions=app.state.db.sessions)

    def joined_unit_of_work(session: AsyncSession) -> SqlUnitOfWork:
        return SqlUnitOfWork(writer, clock, session=session)

    def subscribe(bus: EventBus) -> None:
        consumers.register(
            bus,
            app.state.db.sessions,
            joined_unit_of_work,
            consumer=settings.service_name,
            payment_window=timedelta(seconds=settings.payment_window_seconds),
            max_transactions=settings.db_pool_size,
        )

    async def start_sweeper(_: FastAPI) -> Callable[[], Awaitable[None]]:
        sweeper = background.ExpirySweeper(
            unit_of_work, interval=settings.sweep_interval_seconds, batch_size=settings.sweep_batch_size
        )
        return background.start_in_background(sweeper)

    app = create_service_app(
        settings,
        title="Flashline orders",
        routers=[orders.router, tenants.router],
        subscribe=subscribe,
        on_startup=[start_sweeper],
        state={"unit_of_work": unit_of_work, "placements": Placements(unit_of_work)},
    )
    errors.install(app)
    return app
