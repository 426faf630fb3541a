"""The REST API through the real app: Postgres, auth, the outbox-backed stock channel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.bootstrap import build_app
from flashline_contracts.topology import DEV_INTERNAL_API_KEY
from flashline_service.testing import ThrowawayVhosts, app_client, user_token

from ..support import settings_for

GATEWAY = {"Authorization": f"Bearer {DEV_INTERNAL_API_KEY}"}  # the gateway's key for position lookups


@pytest.fixture(scope="module")
def database_url(catalog_database: Callable[[str], str]) -> str:
    return catalog_database("api")


@pytest.fixture(scope="module")
async def client(
    dev_keys: Path, database_url: str, throwaway_vhosts: ThrowawayVhosts
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings_for(dev_keys, database_url, throwaway_vhosts.create("catalog-api")))
    async with app_client(app) as client:
        yield client


@pytest.fixture(scope="module")
def staff(dev_keys: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(dev_keys, 'sam', 'staff')}"}


@pytest.fixture(scope="module")
def customer(dev_keys: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(dev_keys, 'alice', 'customer')}"}


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


async def create(client: httpx.AsyncClient, staff: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"sku": sku(), "name": "Air Max", "price_cents": 12_000, "currency": "EUR", "stock": 10, **fields}
    response = await client.post("/products", json=body, headers=staff)
    assert response.status_code == 201, response.text
    return response.json()


async def test_staff_creates_anyone_reads_with_the_stream_position(
    client: httpx.AsyncClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    body = {"sku": sku(), "name": "Air Max", "price_cents": 12_000, "currency": "EUR", "stock": 4}
    assert (await client.post("/products", json=body)).status_code == 401
    assert (await client.post("/products", json=body, headers=customer)).status_code == 403
    created = (await client.post("/products", json=body, headers=staff)).json()
    assert created["sku"] == body["sku"] and created["available"] == 4 and created["status"] == "low"
    assert created["version"] == 1 and created["stream"]["offset"] == 1 and created["stream"]["epoch"]
    fetched = (await client.get(f"/products/{created['id']}")).json()
    assert fetched == created
    channel = (await client.get(f"/internal/channels/stock:{created['id']}", headers=GATEWAY)).json()
    assert channel["offset"] == 1 and channel["epoch"] == created["stream"]["epoch"]
    assert channel["data"] == {"product_id": created["id"], "available": 4, "status": "low", "version": 1}


async def test_duplicate_sku_is_a_conflict(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    first = await create(client, staff)
    again = {"sku": first["sku"], "name": "x", "price_cents": 1, "currency": "EUR", "stock": 1}
    response = await client.post("/products", json=again, headers=staff)
    assert response.status_code == 409 and first["sku"] in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price_cents": -1}, "price_cents"),
        ({"currency": "euro"}, "currency"),
        ({"stock": "many"}, "stock"),
        ({"sku": "has space"}, "sku"),
        ({"sale_starts_at": "2030-01-01T10:00:00"}, "sale_starts_at"),
        ({"colour": "red"}, "colour"),
        ({"name": None}, "name"),
    ],
)
async def test_invalid_products_are_422_with_a_reason(
    client: httpx.AsyncClient, staff: dict[str, str], change: dict[str, Any], field: str
) -> None:
    body = {"sku": sku(), "name": "Air Max", "price_cents": 100, "currency": "EUR", "stock": 1, **change}
    response = await client.post("/products", json=body, headers=staff)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str) and field in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "ids=1,x",
        "ids=",
        "ids=0",
        "cursor=abc",
        "limit=0",
        "limit=101",
        "ids=1&cursor=2",
        f"ids={','.join(['1'] * 101)}",
    ],
)
async def test_bad_listing_queries_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/products?{query}")
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)


async def test_unknown_products_are_404(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    assert (await client.get("/products/987654321")).status_code == 404
    assert (await client.get("/products/99999999999999999999")).status_code == 422
    restock = await client.post("/products/987654321/restock", json={"quantity": 1}, headers=staff)
    assert restock.status_code == 404 and restock.json()["detail"] == "product 987654321 does not exist"
    update = await client.put("/products/987654321", json={"name": "x", "price_cents": 1}, headers=staff)
    assert update.status_code == 404


async def test_restock_moves_stock_version_and_status(
    client: httpx.AsyncClient, staff: dict[str, str], customer: dict[str, str]
) -> None:
    product = await create(client, staff, stock=0)
    assert product["status"] == "out"
    url = f"/products/{product['id']}/restock"
    assert (await client.post(url, json={"quantity": 3}, headers=customer)).status_code == 403
    assert (await client.post(url, json={"quantity": 0}, headers=staff)).status_code == 422
    restocked = (await client.post(url, json={"quantity": 30}, headers=staff)).json()
    assert (restocked["available"], restocked["status"], restocked["version"]) == (30, "in_stock", 2)
    assert restocked["stream"] == {"offset": 2, "epoch": product["stream"]["epoch"]}


async def test_put_changes_details_and_schedules_drops(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    product = await create(client, staff)
    url = f"/products/{product['id']}"
    renamed = (await client.put(url, json={"name": "Air Max 90", "price_cents": 13_000}, headers=staff)).json()
    assert (renamed["name"], renamed["price_cents"], renamed["version"]) == ("Air Max 90", 13_000, 1)
    starts = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    body = {"name": "Air Max 90", "price_cents": 13_000, "sale_starts_at": starts.isoformat()}
    scheduled = (await client.put(url, json=body, headers=staff)).json()
    assert (scheduled["status"], scheduled["version"]) == ("upcoming", 2)
    assert datetime.fromisoformat(scheduled["sale_starts_at"]) == starts
    channel = (await client.get(f"/internal/channels/stock:{product['id']}", headers=GATEWAY)).json()
    assert channel["data"]["status"] == "upcoming" and channel["offset"] == 2
    kept = (await client.put(url, json={"name": "Air Max 95", "price_cents": 13_000}, headers=staff)).json()
    assert kept["status"] == "upcoming"  # an absent sale_starts_at keeps the schedule
    cleared = (await client.put(url, json={**body, "sale_starts_at": None}, headers=staff)).json()
    assert (cleared["status"], cleared["version"], cleared["sale_starts_at"]) == ("in_stock", 3, None)


async def test_list_by_ids_and_paginate(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    made = [await create(client, staff) for _ in range(3)]
    ids = [p["id"] for p in made]
    by_ids = (await client.get(f"/products?ids={ids[2]},{ids[0]},987654321")).json()
    assert [p["id"] for p in by_ids["items"]] == [ids[2], ids[0]] and by_ids["next_cursor"] is None
    assert all(p["stream"]["epoch"] for p in by_ids["items"])
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/products", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(set(seen)) and set(ids) <= set(seen)
