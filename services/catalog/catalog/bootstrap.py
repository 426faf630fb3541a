"""The one place that wires the catalog: settings -> units of work, handlers, consumers, scheduler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.entrypoints import background, consumers
from catalog.entrypoints.api import errors, products
from catalog.service_layer.integration import OutboxWriter
from catalog.service_layer.unit_of_work import Clock, SqlUnitOfWork
from catalog.settings import CatalogSettings
from flashline_messaging.bus import EventBus
from flashline_service.app import create_service_app

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_app(settings: CatalogSettings, *, clock: Clock = utc_now) -> FastAPI:
    writer = OutboxWriter(producer=settings.service_name, low_stock_threshold=settings.low_stock_threshold, clock=clock)

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
            max_transactions=settings.db_pool_size,
        )

    async def start_drop_scheduler(_: FastAPI) -> Callable[[], Awaitable[None]]:
        scheduler = background.DropScheduler(
            unit_of_work, clock, max_sleep=settings.drop_max_sleep_seconds, batch_size=settings.drop_batch_size
        )
        return background.start_in_background(scheduler)

    app = create_service_app(
        settings,
        title="Flashline catalog",
        routers=[products.router],
        subscribe=subscribe,
        on_startup=[start_drop_scheduler],
        state={"unit_of_work": unit_of_work, "clock": clock},
    )
    errors.install(app)
    return app
