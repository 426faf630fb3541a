"""What reaches the push log when events arrive on the real bus: sold-out flags, emptied carts, echo suppression."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cart.bootstrap import build_app
from flashline_contracts.events import ProductChanged
from flashline_service.testing import app_client, user_token

from ..support import CatalogDouble, PushTap, catalog_double, settings_for

ORDER_IDS = itertools.count(1)


@pytest.fixture(scope="module")
async def client(dev_keys: Path, database_url: str, amqp_url: str, tap: PushTap) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(build_app(settings_for(dev_keys, database_url, amqp_url))) as client:
        yield client


@pytest.fixture(scope="module")
async def catalog(amqp_url: str, engine: AsyncEngine, client: httpx.AsyncClient) -> AsyncIterator[CatalogDouble]:
    async with catalog_double(amqp_url, engine) as double:
        yield double


async def cart_with(
    client: httpx.AsyncClient, product_id: int, quantity: int, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """A cart (the user's if ``headers`` has a user token, else a new guest cart) holding ``quantity``."""
    created = (await client.post("/carts", headers=headers or {})).json()
    access = headers or {"X-Cart-Token": created["cart_token"]}
    response = await client.put(
        f"/carts/{created['cart_id']}/items/{product_id}", json={"quantity": quantity}, headers=access
    )
    assert response.status_code == 200, response.text
    return created["cart_id"], access


async def version(client: httpx.AsyncClient, cart_id: str, access: dict[str, str]) -> int:
    cart: dict[str, Any] = (await client.get(f"/carts/{cart_id}", headers=access)).json()
    return int(cart["version"])


async def test_selling_out_flags_every_cart_holding_the_product_live(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product(available=5)
    small, small_access = await cart_with(client, shoe, 2)
    large, large_access = await cart_with(client, shoe, 4)
    await catalog.stock(shoe, 3)  # the 4 no longer fits; the 2 still does
    pushed = await tap.next_on(f"cart:{large}", 3)
    [line] = pushed["data"]["items"]
    assert (line["quantity"], line["available"], line["short"]) == (4, 3, True)
    assert pushed["data"]["version"] == 3 and "exclude_client" not in pushed
    assert await version(client, small, small_access) == 2

    await catalog.stock(shoe, 0)  # sold out: both carts are short now, the large one already was
    pushed = await tap.next_on(f"cart:{small}", 3)
    assert pushed["data"]["items"][0]["short"] is True and pushed["data"]["items"][0]["available"] == 0
    assert await version(client, large, large_access) == 3


async def test_duplicate_and_reordered_stock_events_never_regress_or_republish(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product(available=5)
    cart_id, access = await cart_with(client, shoe, 3)
    await catalog.stock(shoe, 1, version=4)
    assert (await tap.next_on(f"cart:{cart_id}", 3))["data"]["items"][0]["short"] is True
    await catalog.stock(shoe, 9, version=3, wait=False)  # older than what was applied
    await catalog.stock(shoe, 1, version=4, wait=False)  # a redelivery of the same version
    await catalog.stock(shoe, 2, version=5)  # still short: no new publication either
    cart = (await client.get(f"/carts/{cart_id}", headers=access)).json()
    assert cart["version"] == 3 and cart["items"][0]["available"] == 2
    assert sorted(m["offset"] for m in tap.on(f"cart:{cart_id}")) == [1, 2, 3]


async def test_the_tab_that_made_a_change_is_excluded_from_its_publication(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product()
    created = (await client.post("/carts", headers={"X-Client-Id": "tab-a"})).json()
    cart_id, access = created["cart_id"], {"X-Cart-Token": created["cart_token"]}
    url = f"/carts/{cart_id}/items/{shoe}"
    await client.put(url, json={"quantity": 1}, headers={**access, "X-Client-Id": "tab-b"})
    await client.put(url, json={"quantity": 2}, headers=access)
    pushes = [await tap.next_on(f"cart:{cart_id}", offset) for offset in (1, 2, 3)]
    assert [p.get("exclude_client") for p in pushes] == ["tab-a", "tab-b", None]
    assert [p["data"]["origin_client"] for p in pushes] == ["tab-a", "tab-b", None]
    assert pushes[2]["data"]["items"][0]["quantity"] == 2 and pushes[2]["epoch"] == created["stream"]["epoch"]


async def test_a_confirmed_order_empties_the_cart_it_came_from(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap, dev_keys: Path
) -> None:
    shoe = await catalog.product()
    henry = {"Authorization": f"Bearer {user_token(dev_keys, 'henry')}"}
    cart_id, _ = await cart_with(client, shoe, 2, henry)
    await catalog.order_status(next(ORDER_IDS), "henry", cart_id, "pending")
    await catalog.order_status(next(ORDER_IDS), "mallory", cart_id, "confirmed")  # not her cart
    await catalog.order_status(next(ORDER_IDS), "henry", cart_id, "confirmed")
    pushed = await tap.next_on(f"cart:{cart_id}", 3)
    assert pushed["data"]["items"] == [] and pushed["data"]["status"] == "open"
    cart = (await client.get("/carts/mine", headers=henry)).json()
    assert cart["cart_id"] == cart_id and cart["version"] == 3 and cart["items"] == []
    await asyncio.sleep(0.3)  # nothing else may follow
    assert sorted(m["offset"] for m in tap.on(f"cart:{cart_id}")) == [1, 2, 3]


async def test_a_line_waits_short_until_its_stock_is_known(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product(available=0)
    cart_id, access = await cart_with(client, shoe, 1)
    assert (await tap.next_on(f"cart:{cart_id}", 2))["data"]["items"][0]["short"] is True
    await catalog.stock(shoe, 8)
    [line] = (await tap.next_on(f"cart:{cart_id}", 3))["data"]["items"]
    assert (line["available"], line["short"]) == (8, False)
    assert await version(client, cart_id, access) == 3


async def test_a_new_price_reaches_every_open_cart_holding_the_product_live(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product(available=5, price_cents=1_500)
    first, first_access = await cart_with(client, shoe, 2)
    second, _ = await cart_with(client, shoe, 1)
    repriced = ProductChanged(
        product_id=shoe, sku=f"SKU-{shoe}", name="Sneaker, on sale", price_cents=1_200, currency="EUR"
    )
    await catalog.publish(repriced, shoe)
    [line] = (await tap.next_on(f"cart:{first}", 3))["data"]["items"]
    assert (line["name"], line["unit_price_cents"], line["line_total_cents"]) == ("Sneaker, on sale", 1_200, 2_400)
    assert (await tap.next_on(f"cart:{second}", 3))["data"]["totals"]["subtotal_cents"] == 1_200
    cart: dict[str, Any] = (await client.get(f"/carts/{first}", headers=first_access)).json()
    assert (cart["version"], cart["items"][0]["unit_price_cents"]) == (3, 1_200)
