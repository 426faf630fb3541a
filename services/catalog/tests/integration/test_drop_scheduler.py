"""Scheduled drops: at the sale start exactly one replica publishes, and a restart catches up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from catalog.adapters.tables import products
from catalog.bootstrap import utc_now
from catalog.domain import commands
from catalog.entrypoints.background import DropScheduler
from catalog.service_layer import handlers
from catalog.service_layer.integration import OutboxWriter
from catalog.service_layer.unit_of_work import Clock, SqlUnitOfWork
from flashline_messaging.schema import outbox_table as outbox

from ..support import eventually


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("drops")


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """One engine per simulated replica."""
    made = [create_async_engine(database_url) for _ in range(2)]
    yield made
    for engine in made:
        await engine.dispose()


def units_of_work(engine: AsyncEngine, clock: Clock = utc_now) -> Callable[[], SqlUnitOfWork]:
    writer = OutboxWriter(producer="catalog", low_stock_threshold=5, clock=clock)
    return lambda: SqlUnitOfWork(writer, clock, sessions=async_sessionmaker(engine, expire_on_commit=False))


async def create(engine: AsyncEngine, starts: datetime, clock: Clock = utc_now) -> int:
    command = commands.CreateProduct(f"DROP-{uuid.uuid4().hex[:8]}", "Drop", 100, "EUR", 10, sale_starts_at=starts)
    return (await handlers.create_product(command, units_of_work(engine, clock)())).id


async def publications(engine: AsyncEngine, product_id: int) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(outbox.c.body).where(outbox.c.routing_key == f"stock:{product_id}").order_by(outbox.c.id)
        )
        return [orjson.loads(body) for body in rows.scalars()]


async def test_two_racing_replicas_publish_each_drop_exactly_once(engines: list[AsyncEngine]) -> None:
    starts = datetime.now(UTC) + timedelta(milliseconds=600)
    drops = [await create(engines[0], starts) for _ in range(10)]
    replicas = [DropScheduler(units_of_work(engine), utc_now, max_sleep=0.2) for engine in engines]
    tasks = [asyncio.create_task(replica.run()) for replica in replicas]
    try:
        await eventually(lambda: _all_announced(engines[0], drops), timeout=10)
        await asyncio.sleep(0.5)  # give a double publication the time to happen
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for product_id in drops:
        published = await publications(engines[0], product_id)
        assert [(p["offset"], p["data"]["status"]) for p in published] == [(1, "upcoming"), (2, "in_stock")]
        at = datetime.fromisoformat(published[1]["published_at"])
        assert starts <= at < starts + timedelta(seconds=2)  # on time, not one poll interval late


async def test_a_restarted_scheduler_catches_up_on_missed_drops(engines: list[AsyncEngine]) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    # Created "before" its start by a clock in the past, while no scheduler was running.
    product_id = await create(engines[0], past, clock=lambda: past - timedelta(minutes=1))
    delay = await DropScheduler(units_of_work(engines[1]), utc_now).tick()
    assert 0 < delay <= 1.0
    published = await publications(engines[0], product_id)
    assert [p["data"]["status"] for p in published] == ["upcoming", "in_stock"]
    async with engines[0].connect() as conn:
        row = (
            await conn.execute(
                sa.select(products.c.sale_announced, products.c.version).where(products.c.id == product_id)
            )
        ).one()
    assert tuple(row) == (True, 2)


async def _all_announced(engine: AsyncEngine, ids: list[int]) -> bool:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(products.c.id.in_(ids), products.c.sale_announced)
        return (await conn.execute(query)).scalar_one() == len(ids)
