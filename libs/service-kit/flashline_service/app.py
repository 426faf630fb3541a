"""Assemble a service's FastAPI app: lifespan owning db + messaging, health, errors, auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from flashline_auth import KeySet, TokenMinter
from flashline_auth.keys import SigningKey
from flashline_service import channels, health
from flashline_service.auth import UserAuth
from flashline_service.database import Database
from flashline_service.errors import install_error_handlers
from flashline_service.runtime import BusSetup, MessagingRuntime
from flashline_service.settings import ServiceSettings

Stop = Callable[[], Awaitable[None]]
Hook = Callable[[FastAPI], Awaitable[Stop | None]]
"""A startup hook (e.g. a background job); it may return a coroutine function that stops it."""


def grant_minter(settings: ServiceSettings) -> TokenMinter:
    assert settings.signing_key_file is not None and settings.signing_key_id is not None
    key = SigningKey.load(settings.signing_key_file, kid=settings.signing_key_id, issuer=settings.issuer)
    return TokenMinter(key, audience=settings.audience, ttl_seconds=settings.grant_ttl_seconds)


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    subscribe: BusSetup | None = None,
    on_startup: Sequence[Hook] = (),
    state: dict[str, Any] | None = None,
) -> FastAPI:
    """The app, with ``app.state``: settings, db, user_auth, minter, messaging, plus ``state``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.connect(
            settings.database_url, pool_size=settings.db_pool_size, connect_timeout=settings.db_connect_timeout
        )
        keys = KeySet.load(settings.trusted_keys_file)
        messaging = MessagingRuntime(settings, db, subscribe=subscribe)
        app.state.settings = settings
        app.state.db = db
        app.state.user_auth = UserAuth(keys, audience=settings.audience)
        app.state.minter = grant_minter(settings)
        app.state.messaging = messaging
        for name, value in (state or {}).items():
            setattr(app.state, name, value)

        async def database_ready() -> bool:
            await db.ping()
            return True

        app.state.readiness_checks = {"database": database_ready}
        app.state.status_checks = {"broker": messaging.broker_ready}
        await messaging.start()
        background = [await hook(app) for hook in on_startup]
        try:
            yield
        finally:
            for stop in background:
                if stop is not None:
                    await stop()
            await messaging.stop()
            await db.dispose()

    app = FastAPI(title=title, lifespan=lifespan)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag"],
        )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(channels.router)
    for router in routers:
        app.include_router(router)
    return app
