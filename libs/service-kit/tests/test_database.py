"""The pool hands out live connections without pinging each checkout (real Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
import sqlalchemy as sa

from flashline_service.database import Database
from flashline_service.testing import ThrowawayDatabases

BACKEND_PID = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
async def database_url(throwaway_databases: ThrowawayDatabases) -> str:
    return throwaway_databases.create(f"kit_pool_{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def terminate(database_url: str) -> AsyncIterator[Callable[[int], object]]:
    """Ends a backend from the server's side, as a restart or an administrator does."""
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))

    async def kill(pid: int) -> None:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)

    yield kill
    await admin.close()


def count_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    dialect = db.engine.sync_engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def backend_pid(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(BACKEND_PID)).scalar_one())


async def test_a_connection_the_server_closed_is_replaced_at_checkout(database_url: str, terminate) -> None:
    db = Database.connect(database_url, pool_size=1)
    try:
        first = await backend_pid(db)
        await terminate(first)
        await asyncio.sleep(0.3)  # the server's goodbye reaches the idle pooled connection
        assert await backend_pid(db) != first  # no error: the dead connection never reached the caller
    finally:
        await db.dispose()


async def test_a_busy_pool_does_not_ping(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database.connect(database_url, pool_size=1)
    pings = count_pings(db, monkeypatch)
    try:
        pids = {await backend_pid(db) for _ in range(5)}
        assert len(pids) == 1 and pings == []
    finally:
        await db.dispose()


async def test_a_connection_idle_past_the_limit_is_pinged_and_replaced_if_dead(
    database_url: str, terminate, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database.connect(database_url, pool_size=1, idle_ping_after=0.0)
    pings = count_pings(db, monkeypatch)
    try:
        first = await backend_pid(db)
        assert await backend_pid(db) == first and len(pings) == 1
        # killed just now: the closed flag or, if the goodbye is not read yet, the ping finds out
        await terminate(first)
        second = await backend_pid(db)
        assert second != first
    finally:
        await db.dispose()
