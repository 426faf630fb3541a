"""Run a service's Alembic migrations programmatically (``python -m <service> migrate``).

Alembic's own advisory lock is not used by default, so we take one: several replicas or Jobs
starting together apply migrations once, the others wait and find nothing to do.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from flashline_messaging.relay import asyncpg_dsn


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def _upgrade_locked(migrations_dir: Path, database_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    key = zlib.crc32(f"flashline-migrate:{migrations_dir.parent.name}".encode())
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        await asyncio.to_thread(command.upgrade, alembic_config(migrations_dir, database_url), "head")
    finally:
        await conn.close()


def upgrade(migrations_dir: Path, database_url: str) -> None:
    asyncio.run(_upgrade_locked(migrations_dir, database_url))
