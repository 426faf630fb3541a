"""The one place that wires the cart: settings -> rules, units of work, handlers, consumers, routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cart.domain.model import CartRules
from cart.entrypoints import background, consumers
from cart.entrypoints.api import carts, errors
from cart.service_layer.unit_of_work import SqlUnitOfWork
from cart.settings import CartSettings
from flashline_messaging.bus import EventBus
from flashline_service.app import create_service_app

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def build_app(settings: CartSettings) -> FastAPI:
    rules = CartRules(max_quantity_per_line=settings.max_quantity_per_line, currency=settings.currency)

    # The database exists only inside the lifespan (app.state.db), so these read it when called.
    def unit_of_work() -> SqlUnitOfWork:
        return SqlUnitOfWork(sessions=app.state.db.sessions)

    def joined_unit_of_work(session: AsyncSession) -> SqlUnitOfWork:
        return SqlUnitOfWork(session=session)

    def subscribe(bus: EventBus) -> None:
        consumers.register(
            bus,
            app.state.db.sessions,
            joined_unit_of_work,
            unit_of_work,
            rules,
            consumer=settings.service_name,
            max_transactions=settings.db_pool_size,
        )

    async def start_sweeper(_: FastAPI) -> Callable[[], Awaitable[None]]:
        sweeper = background.IdleGuestCartSweeper(
            unit_of_work,
            ttl=timedelta(days=settings.guest_cart_ttl_days),
            interval=settings.guest_sweep_interval_seconds,
            batch_size=settings.guest_sweep_batch_size,
        )
        return background.start_in_background(sweeper)

    app = create_service_app(
        settings,
        title="Flashline cart",
        routers=[carts.router],
        subscribe=subscribe,
        on_startup=[start_sweeper],
        state={"unit_of_work": unit_of_work, "rules": rules},
    )
    errors.install(app)
    return app
