"""The REST API through the real app: Postgres, auth, the outbox-backed cart channel, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cart.bootstrap import build_app
from flashline_auth import KeySet, TokenVerifier
from flashline_service.testing import app_client, user_token

from ..support import CatalogDouble, PushTap, catalog_double, settings_for

MAX_PER_LINE = 20


@pytest.fixture(scope="module")
async def client(dev_keys: Path, database_url: str, amqp_url: str, tap: PushTap) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings_for(dev_keys, database_url, amqp_url, max_quantity_per_line=MAX_PER_LINE))
    async with app_client(app) as client:
        yield client


@pytest.fixture(scope="module")
async def catalog(amqp_url: str, engine: AsyncEngine, client: httpx.AsyncClient) -> AsyncIterator[CatalogDouble]:
    async with catalog_double(amqp_url, engine) as double:
        yield double


def bearer(dev_keys: Path, user: str, role: str = "customer") -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(dev_keys, user, role)}"}


async def guest_cart(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    response = await client.post("/carts")
    assert response.status_code == 201, response.text
    created = response.json()
    return created, {"X-Cart-Token": created["cart_token"]}


async def put(
    client: httpx.AsyncClient, cart_id: str, product_id: int, quantity: object, headers: dict[str, str]
) -> httpx.Response:
    return await client.put(f"/carts/{cart_id}/items/{product_id}", json={"quantity": quantity}, headers=headers)


async def test_a_guest_cart_opens_only_with_its_token(client: httpx.AsyncClient, dev_keys: Path) -> None:
    created, token = await guest_cart(client)
    cart_id = created["cart_id"]
    assert len(cart_id) >= 22 and created["cart_token"]
    assert created["channel"] == f"cart:{cart_id}" and created["version"] == 1 and created["items"] == []
    assert created["stream"]["offset"] == 1 and created["stream"]["epoch"]
    assert created["totals"] == {"items": 0, "subtotal_cents": 0, "currency": "EUR"}
    fetched = await client.get(f"/carts/{cart_id}", headers=token)
    assert fetched.status_code == 200 and fetched.headers["ETag"] == '"1"'
    assert fetched.json() == {k: v for k, v in created.items() if k != "cart_token"}
    refused = [
        await client.get(f"/carts/{cart_id}"),
        await client.get(f"/carts/{cart_id}", headers={"X-Cart-Token": "not-it"}),
        await client.get(f"/carts/{cart_id}", headers=bearer(dev_keys, "alice")),
        await client.get("/carts/no-such-cart", headers=token),
    ]
    assert [(r.status_code, r.json()["detail"]) for r in refused] == [(403, "cart not accessible")] * 4


async def test_a_customer_has_one_open_cart_found_by_mine(client: httpx.AsyncClient, dev_keys: Path) -> None:
    dana = bearer(dev_keys, "dana")
    assert (await client.get("/carts/mine", headers=dana)).status_code == 404
    first = await client.post("/carts", headers=dana)
    assert first.status_code == 201 and first.json()["cart_token"] is None
    again = await client.post("/carts", headers=dana)
    assert again.status_code == 200 and again.json()["cart_id"] == first.json()["cart_id"]
    mine = await client.get("/carts/mine", headers=dana)
    assert mine.status_code == 200 and mine.json()["cart_id"] == first.json()["cart_id"]
    cart_id = first.json()["cart_id"]
    assert (await client.get(f"/carts/{cart_id}", headers=dana)).status_code == 200
    assert (await client.get(f"/carts/{cart_id}", headers=bearer(dev_keys, "eve"))).status_code == 403
    assert (await client.post("/carts", headers=bearer(dev_keys, "sam", "staff"))).status_code == 403
    assert (await client.get("/carts/mine")).status_code == 401


async def test_lines_carry_name_price_totals_and_availability(
    client: httpx.AsyncClient, catalog: CatalogDouble
) -> None:
    shoe = await catalog.product(available=3, price_cents=1_250)
    created, token = await guest_cart(client)
    response = await put(client, created["cart_id"], shoe, 5, {**token, "X-Client-Id": "tab-1"})
    assert response.status_code == 200, response.text
    cart = response.json()
    assert cart["version"] == 2 and cart["stream"]["offset"] == 2 and cart["origin_client"] == "tab-1"
    assert response.headers["ETag"] == '"2"'
    assert cart["items"] == [
        {
            "product_id": shoe,
            "name": f"Sneaker {shoe}",
            "unit_price_cents": 1_250,
            "quantity": 5,
            "line_total_cents": 6_250,
            "available": 3,
            "short": True,
        }
    ]
    assert cart["totals"] == {"items": 5, "subtotal_cents": 6_250, "currency": "EUR"}
    removed = await client.delete(f"/carts/{created['cart_id']}/items/{shoe}", headers=token)
    assert removed.status_code == 200 and removed.json()["items"] == [] and removed.json()["version"] == 3


@pytest.mark.parametrize(
    ("product", "body", "reason"),
    [
        ("known", {"quantity": -1}, "greater than or equal to 0"),
        ("known", {"quantity": MAX_PER_LINE + 1}, f"between 0 and {MAX_PER_LINE}"),
        ("known", {"quantity": "2"}, "valid integer"),
        ("known", {"quantity": 1.5}, "valid integer"),
        ("known", {}, "quantity"),
        ("known", {"quantity": 1, "price": 0}, "price"),
        ("0", {"quantity": 1}, "product_id"),
    ],
)
async def test_invalid_writes_are_422_with_a_reason(
    client: httpx.AsyncClient, catalog: CatalogDouble, product: str, body: dict[str, Any], reason: str
) -> None:
    product_id = await catalog.product() if product == "known" else product
    created, token = await guest_cart(client)
    response = await client.put(f"/carts/{created['cart_id']}/items/{product_id}", json=body, headers=token)
    assert response.status_code == 422 and reason in response.json()["detail"], response.text


async def test_unknown_products_are_404_and_wrong_tokens_403_before_anything(
    client: httpx.AsyncClient, catalog: CatalogDouble
) -> None:
    created, token = await guest_cart(client)
    unknown = await put(client, created["cart_id"], 2**62, 1, token)
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["detail"]
    shoe = await catalog.product()
    assert (await put(client, created["cart_id"], shoe, 1, {"X-Cart-Token": "x"})).status_code == 403
    assert (await put(client, "no-such-cart", shoe, 1, token)).status_code == 403
    assert (await client.get(f"/carts/{created['cart_id']}", headers=token)).json()["version"] == 1


async def test_if_match_accepts_the_current_version_and_412s_a_stale_one_with_the_cart(
    client: httpx.AsyncClient, catalog: CatalogDouble
) -> None:
    shoe = await catalog.product()
    created, token = await guest_cart(client)
    cart_id = created["cart_id"]
    assert (await put(client, cart_id, shoe, 1, {**token, "If-Match": '"1"'})).json()["version"] == 2
    assert (await put(client, cart_id, shoe, 2, {**token, "If-Match": "2"})).json()["version"] == 3
    stale = await put(client, cart_id, shoe, 9, {**token, "If-Match": "2"})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"3"'
    body = stale.json()
    assert body["code"] == "stale_version" and "version 3" in body["detail"]
    assert body["cart"]["version"] == 3 and body["cart"]["items"][0]["quantity"] == 2
    assert body["cart"]["stream"]["offset"] == 3 and body["cart"]["channel"] == f"cart:{cart_id}"
    bad = await put(client, cart_id, shoe, 1, {**token, "If-Match": "soon"})
    assert bad.status_code == 422 and "If-Match" in bad.json()["detail"]
    stale_delete = await client.delete(f"/carts/{cart_id}/items/{shoe}", headers={**token, "If-Match": '"1"'})
    assert stale_delete.status_code == 412 and stale_delete.json()["cart"]["items"]


async def test_concurrent_writers_with_if_match_exactly_one_wins(
    client: httpx.AsyncClient, catalog: CatalogDouble
) -> None:
    shoe = await catalog.product()
    created, token = await guest_cart(client)
    cart_id = created["cart_id"]
    first, second = await asyncio.gather(
        put(client, cart_id, shoe, 3, {**token, "If-Match": "1"}),
        put(client, cart_id, shoe, 7, {**token, "If-Match": "1"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert winner.json()["version"] == 2 and loser.json()["cart"] == winner.json()
    final = (await client.get(f"/carts/{cart_id}", headers=token)).json()
    assert final["version"] == 2 and final["items"][0]["quantity"] == winner.json()["items"][0]["quantity"]


async def test_concurrent_writers_without_if_match_all_land_in_turn_and_the_last_wins(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap
) -> None:
    shoe = await catalog.product()
    created, token = await guest_cart(client)
    cart_id = created["cart_id"]
    answers = await asyncio.gather(*(put(client, cart_id, shoe, quantity, token) for quantity in range(1, 6)))
    assert [a.status_code for a in answers] == [200] * 5
    versions = sorted(a.json()["version"] for a in answers)
    assert versions == [2, 3, 4, 5, 6]
    last = max(answers, key=lambda a: a.json()["version"]).json()
    final = (await client.get(f"/carts/{cart_id}", headers=token)).json()
    assert final["version"] == 6 and final["items"][0]["quantity"] == last["items"][0]["quantity"]
    published = await tap.next_on(f"cart:{cart_id}", 6)
    assert published["data"]["items"][0]["quantity"] == last["items"][0]["quantity"]
    offsets = sorted(m["offset"] for m in tap.on(f"cart:{cart_id}"))
    assert offsets == [1, 2, 3, 4, 5, 6]


async def test_subscription_grants_match_the_connection_that_may_hold_them(
    client: httpx.AsyncClient, dev_keys: Path
) -> None:
    verifier = TokenVerifier(KeySet.load(dev_keys / "trusted.json"), audience="flashline")
    created, token = await guest_cart(client)
    grant = await client.post(f"/carts/{created['cart_id']}/subscription-token", headers=token)
    assert grant.status_code == 200 and grant.json()["channel"] == f"cart:{created['cart_id']}"
    claims, key = verifier.decode(grant.json()["token"])
    assert (claims["sub"], claims["channel"], key.namespaces) == ("", f"cart:{created['cart_id']}", ("cart",))
    assert grant.json()["expires_at"]
    frank = bearer(dev_keys, "frank")
    mine = (await client.post("/carts", headers=frank)).json()
    user_grant = await client.post(f"/carts/{mine['cart_id']}/subscription-token", headers=frank)
    assert verifier.decode(user_grant.json()["token"])[0]["sub"] == "frank"
    assert (await client.post(f"/carts/{created['cart_id']}/subscription-token")).status_code == 403
    assert (await client.post(f"/carts/{mine['cart_id']}/subscription-token", headers=token)).status_code == 403


async def test_merge_folds_the_guest_cart_into_the_users_and_both_channels_publish(
    client: httpx.AsyncClient, catalog: CatalogDouble, tap: PushTap, dev_keys: Path
) -> None:
    plenty, scarce = await catalog.product(available=50), await catalog.product(available=4)
    grace = bearer(dev_keys, "grace")
    mine = (await client.post("/carts", headers=grace)).json()["cart_id"]
    await put(client, mine, plenty, 2, grace)
    guest, token = await guest_cart(client)
    await put(client, guest["cart_id"], plenty, 3, token)
    await put(client, guest["cart_id"], scarce, 6, token)
    url = f"/carts/{guest['cart_id']}/merge"
    assert (await client.post(url, headers=token)).status_code == 401
    assert (await client.post(url, headers={**grace, "X-Cart-Token": "nope"})).status_code == 403
    merged = await client.post(url, headers={**grace, **token, "X-Client-Id": "tab-7"})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["cart_id"] == mine and body["version"] == 3 and body["channel"] == f"cart:{mine}"
    assert [(i["product_id"], i["quantity"], i["short"]) for i in body["items"]] == [
        (plenty, 5, False),
        (scarce, 4, False),
    ]
    closed = (await client.get(f"/carts/{guest['cart_id']}", headers=token)).json()
    assert closed["status"] == "closed" and closed["version"] == 4
    guest_push = await tap.next_on(f"cart:{guest['cart_id']}", 4)
    user_push = await tap.next_on(f"cart:{mine}", 3)
    assert guest_push["data"]["status"] == "closed" and guest_push["exclude_client"] == "tab-7"
    assert user_push["data"]["items"] == body["items"] and user_push["exclude_client"] == "tab-7"
    again = await client.post(url, headers={**grace, **token})
    assert again.status_code == 409 and again.json()["code"] == "cart_closed"
    assert (await put(client, guest["cart_id"], plenty, 1, token)).status_code == 409
    assert (await client.get("/carts/mine", headers=grace)).json()["version"] == 3
