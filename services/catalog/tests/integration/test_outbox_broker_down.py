"""A stock change committed while RabbitMQ is unreachable still reaches the bus once it is back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from catalog.bootstrap import build_app
from flashline_contracts.topology import PUSH_EXCHANGE
from flashline_messaging.schema import outbox_table as outbox
from flashline_service.testing import ThrowawayVhosts, app_client, user_token

from ..support import Tap, eventually, settings_for

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/nowhere"


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("broker_down")


async def test_stock_change_waits_in_the_outbox_and_is_published_later(
    dev_keys: Path, database_url: str, throwaway_vhosts: ThrowawayVhosts
) -> None:
    staff = {"Authorization": f"Bearer {user_token(dev_keys, 'sam', 'staff')}"}
    sku = f"DOWN-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": "Drop", "price_cents": 100, "currency": "EUR", "stock": 3}

    async with app_client(
        build_app(settings_for(dev_keys, database_url, DEAD_BROKER)), wait_for_consumer=False
    ) as client:
        response = await client.post("/products", json=body, headers=staff)
        assert response.status_code == 201  # the API does not wait for the broker
        product_id = response.json()["id"]
        restocked = await client.post(f"/products/{product_id}/restock", json={"quantity": 2}, headers=staff)
        assert restocked.status_code == 200
        assert (await client.get("/readyz")).json()["checks"]["broker"] is False

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        keys = (await conn.execute(sa.select(outbox.c.routing_key))).scalars().all()
    assert keys.count("StockChanged.v1") == 2 and keys.count(f"stock:{product_id}") == 2

    live = throwaway_vhosts.create("catalog-outbox")
    events = await Tap.open(live, ["StockChanged.v1", "ProductChanged.v1"])
    pushes = await Tap.open(live, [""], exchange=PUSH_EXCHANGE)
    try:
        async with app_client(build_app(settings_for(dev_keys, database_url, live))):
            await eventually(lambda: len(events.payloads("StockChanged", product_id=product_id)) == 2)
            await eventually(lambda: len(pushes.messages) == 2)
            # A row leaves the outbox only after its confirm, which may come after a tap has the message.
            await eventually(lambda: _outbox_rows(engine, expected=0))
        changes = events.payloads("StockChanged", product_id=product_id)
        assert [(c["available"], c["version"]) for c in changes] == [(3, 1), (5, 2)]
        assert events.payloads("ProductChanged", product_id=product_id)[0]["sku"] == sku
        assert [(p["channel"], p["offset"], p["data"]["available"]) for p in pushes.messages] == [
            (f"stock:{product_id}", 1, 3),
            (f"stock:{product_id}", 2, 5),
        ]
    finally:
        await events.close()
        await pushes.close()
        await engine.dispose()


async def _outbox_rows(engine: AsyncEngine, *, expected: int) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar_one() == expected
