"""The SQL unit of work: changes, outbox rows and publications commit together or not at all."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from catalog.adapters.tables import products
from catalog.bootstrap import utc_now
from catalog.domain import commands
from catalog.domain.errors import StreamOutOfStep
from catalog.service_layer import handlers
from catalog.service_layer.integration import OutboxWriter
from catalog.service_layer.unit_of_work import SqlUnitOfWork
from flashline_messaging.schema import channel_streams
from flashline_messaging.schema import outbox_table as outbox


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("uow")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def uow(engine: AsyncEngine) -> SqlUnitOfWork:
    writer = OutboxWriter(producer="catalog", low_stock_threshold=5, clock=utc_now)
    return SqlUnitOfWork(writer, utc_now, sessions=async_sessionmaker(engine, expire_on_commit=False))


async def outbox_keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(outbox.c.routing_key).order_by(outbox.c.id))).scalars())


async def test_create_commits_product_events_and_publication_together(engine: AsyncEngine) -> None:
    before = await outbox_keys(engine)
    product = await handlers.create_product(
        commands.CreateProduct(f"U-{uuid.uuid4().hex[:8]}", "n", 1, "EUR", 2), uow(engine)
    )
    added = (await outbox_keys(engine))[len(before) :]
    # The stock publication, then the integration events in their order (one statement).
    assert added == [f"stock:{product.id}", "ProductChanged.v1", "StockChanged.v1"]


async def test_an_out_of_step_stream_refuses_the_change(engine: AsyncEngine) -> None:
    product = await handlers.create_product(
        commands.CreateProduct(f"U-{uuid.uuid4().hex[:8]}", "n", 1, "EUR", 2), uow(engine)
    )
    async with engine.begin() as conn:  # someone else published on the product's channel
        await conn.execute(
            sa.update(channel_streams)
            .where(channel_streams.c.channel == f"stock:{product.id}")
            .values(top_offset=channel_streams.c.top_offset + 1)
        )
    before = await outbox_keys(engine)
    with pytest.raises(StreamOutOfStep):
        await handlers.restock(commands.Restock(product.id, 1), uow(engine))
    assert await outbox_keys(engine) == before
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(products.c.available, products.c.version).where(products.c.id == product.id))
        ).one()
    assert tuple(row) == (2, 1)  # rolled back with the publication
