"""The REST API on real Postgres and RabbitMQ: idempotency, 409s, 404s, tenants and grants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from flashline_auth import KeySet, TokenVerifier
from flashline_contracts.tokens import SubscriptionClaims
from flashline_contracts.topology import DEV_INTERNAL_API_KEY
from flashline_service.testing import ThrowawayVhosts, app_client
from orders.bootstrap import build_app

from ..support import CatalogBus, auth, product_id, settings_for, unique

GATEWAY = {"Authorization": f"Bearer {DEV_INTERNAL_API_KEY}"}  # the gateway's key for position lookups


@pytest.fixture(scope="module")
def vhost_url(throwaway_vhosts: ThrowawayVhosts) -> str:
    return throwaway_vhosts.create("orders-api")


@pytest.fixture(scope="module")
async def client(dev_keys: Path, database_url: str, vhost_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(build_app(settings_for(dev_keys, database_url, vhost_url))) as client:
        yield client


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def products(client: httpx.AsyncClient, vhost_url: str, engine: AsyncEngine) -> dict[str, int]:
    """Two euro products and a dollar one, known to orders through the catalog's events."""
    async with CatalogBus.open(vhost_url) as bus:
        return {
            "shoe": await bus.product(engine, price_cents=2500),
            "laces": await bus.product(engine, price_cents=300),
            "import": await bus.product(engine, price_cents=999, currency="USD"),
        }


class Api:
    def __init__(self, client: httpx.AsyncClient, dev_keys: Path) -> None:
        self.client = client
        self.keys = dev_keys

    def headers(self, user: str, role: str = "customer", tenant: str | None = None, key: str | None = None) -> dict:
        headers = auth(self.keys, user, role, tenant)
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def place(
        self, user: str, items: list[dict[str, int]], *, tenant: str | None = None, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {"items": items, **extra}
        return await self.client.post(
            "/orders", json=body, headers=self.headers(user, tenant=tenant, key=key or unique("k"))
        )

    async def order(self, user: str, items: list[dict[str, int]], **kwargs: Any) -> dict[str, Any]:
        response = await self.place(user, items, **kwargs)
        assert response.status_code == 202, response.text
        return response.json()


@pytest.fixture
def api(client: httpx.AsyncClient, dev_keys: Path) -> Api:
    return Api(client, dev_keys)


async def test_placing_prices_lines_from_the_catalog_and_answers_202_pending(
    api: Api, products: dict[str, int]
) -> None:
    items = [{"product_id": products["shoe"], "quantity": 2}, {"product_id": products["laces"], "quantity": 1}]
    order = await api.order(unique("alice"), items, cart_id="cart-7")
    assert (order["status"], order["version"], order["total_cents"], order["currency"]) == ("pending", 1, 5300, "EUR")
    assert [(i["product_id"], i["unit_price_cents"], i["line_total_cents"]) for i in order["items"]] == [
        (products["shoe"], 2500, 5000),
        (products["laces"], 300, 300),
    ]
    assert order["cart_id"] == "cart-7" and [h["status"] for h in order["history"]] == ["pending"]
    assert order["stream"]["offset"] == 1 and order["stream"]["epoch"]


async def test_the_placed_order_answered_is_the_stored_one(api: Api, products: dict[str, int]) -> None:
    """POST answers from the order it just committed; a GET reads it back: the same representation."""
    user = unique("alice")
    placed = await api.order(user, [{"product_id": products["laces"], "quantity": 2}], tenant="acme", cart_id="c-1")
    read = await api.client.get(f"/orders/{placed['id']}", headers=api.headers(user, tenant="acme"))
    assert read.status_code == 200 and read.json() == placed


async def test_the_same_key_replays_the_order_and_another_body_is_422(api: Api, products: dict[str, int]) -> None:
    user, key = unique("alice"), unique("key")
    items = [{"product_id": products["shoe"], "quantity": 1}]
    first = await api.place(user, items, key=key)
    again = await api.place(user, items, key=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await api.place(user, [{"product_id": products["shoe"], "quantity": 2}], key=key)
    assert other.status_code == 422 and "different request body" in other.json()["detail"]
    listed = await api.client.get("/orders", headers=api.headers(user))
    assert [o["id"] for o in listed.json()["items"]] == [first.json()["id"]]


async def test_concurrent_retries_with_one_key_create_one_order(api: Api, products: dict[str, int]) -> None:
    user, key = unique("alice"), unique("key")
    items = [{"product_id": products["laces"], "quantity": 3}]
    responses = await asyncio.gather(*(api.place(user, items, key=key) for _ in range(6)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1


async def test_concurrent_placements_each_get_their_own_order_and_a_bad_one_its_own_422(
    api: Api, products: dict[str, int]
) -> None:
    users = [unique("buyer") for _ in range(12)]
    items = [{"product_id": products["shoe"], "quantity": 1}]
    ghost = [{"product_id": product_id(), "quantity": 1}]
    responses = await asyncio.gather(*(api.place(user, items) for user in users), api.place(users[0], ghost))
    assert [r.status_code for r in responses] == [202] * 12 + [422]
    placed = [r.json() for r in responses[:12]]
    assert len({order["id"] for order in placed}) == 12
    assert all(order["status"] == "pending" and order["stream"]["offset"] == 1 for order in placed)
    for user, order in zip(users, placed, strict=True):
        read = await api.client.get(f"/orders/{order['id']}", headers=api.headers(user))
        assert read.json() == order


@pytest.mark.parametrize(
    ("items", "headers_of", "status", "reason"),
    [
        ([{"product_id": 1, "quantity": 1}], "no-key", 400, "Idempotency-Key"),
        ([{"product_id": 1, "quantity": 0}], "ok", 422, "quantity"),
        ([], "ok", 422, "items"),
        ([{"product_id": 2**63, "quantity": 1}], "ok", 422, "product_id"),
        ([{"product_id": 1, "quantity": 1}], "staff", 403, "customers only"),
        ([{"product_id": 1, "quantity": 1}], "anonymous", 401, "authentication required"),
    ],
)
async def test_bad_requests_get_a_reason_never_a_500(
    api: Api, items: list[dict[str, int]], headers_of: str, status: int, reason: str
) -> None:
    headers = {
        "no-key": api.headers("alice"),
        "ok": api.headers("alice", key=unique("k")),
        "staff": api.headers("sam", "staff", key=unique("k")),
        "anonymous": {"Idempotency-Key": unique("k")},
    }[headers_of]
    response = await api.client.post("/orders", json={"items": items}, headers=headers)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]


async def test_unknown_products_and_mixed_currencies_are_422_and_leave_the_key_usable(
    api: Api, products: dict[str, int]
) -> None:
    user, key, ghost = unique("alice"), unique("key"), product_id()
    unknown = await api.place(user, [{"product_id": ghost, "quantity": 1}], key=key)
    assert unknown.status_code == 422 and unknown.json()["product_ids"] == [ghost]
    mixed = await api.place(
        user, [{"product_id": products["shoe"], "quantity": 1}, {"product_id": products["import"], "quantity": 1}]
    )
    assert mixed.status_code == 422 and mixed.json()["currencies"] == ["EUR", "USD"]
    fixed = await api.place(user, [{"product_id": products["shoe"], "quantity": 1}], key=key)
    assert fixed.status_code == 202


async def test_illegal_transitions_are_409_with_the_current_status(api: Api, products: dict[str, int]) -> None:
    user = unique("alice")
    order = await api.order(user, [{"product_id": products["shoe"], "quantity": 1}])
    path = f"/orders/{order['id']}"
    pay = await api.client.post(f"{path}/pay", headers=api.headers(user))
    assert pay.status_code == 409 and pay.json()["status"] == "pending"
    pack = await api.client.post(f"{path}/status", json={"status": "packed"}, headers=api.headers("sam", "staff"))
    assert pack.status_code == 409 and pack.json()["status"] == "pending"
    wrong = await api.client.post(f"{path}/status", json={"status": "paid"}, headers=api.headers("sam", "staff"))
    assert wrong.status_code == 422 and "packed, shipped or delivered" in wrong.json()["detail"]
    by_customer = await api.client.post(f"{path}/status", json={"status": "packed"}, headers=api.headers(user))
    assert by_customer.status_code == 403
    cancel = await api.client.post(f"{path}/cancel", headers=api.headers(user))
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled" and cancel.json()["version"] == 2
    again = await api.client.post(f"{path}/cancel", json={"reason": "twice"}, headers=api.headers(user))
    assert again.status_code == 409 and again.json() == {
        "detail": f"order {order['id']} is cancelled; it cannot become cancelled",
        "code": "illegal_transition",
        "status": "cancelled",
    }


async def test_strangers_get_404_on_every_route_and_the_order_is_untouched(api: Api, products: dict[str, int]) -> None:
    owner = unique("alice")
    order = await api.order(owner, [{"product_id": products["laces"], "quantity": 1}])
    path = f"/orders/{order['id']}"
    stranger = api.headers(unique("mallory"))
    calls = [
        api.client.get(path, headers=stranger),
        api.client.post(f"{path}/pay", headers=stranger),
        api.client.post(f"{path}/cancel", headers=stranger),
        api.client.post(f"{path}/subscription-token", headers=stranger),
        api.client.get("/orders/999999999999", headers=api.headers(owner)),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 404 and response.json()["detail"].endswith("not found")
    mine = await api.client.get(path, headers=api.headers(owner))
    assert mine.json()["status"] == "pending" and mine.json()["version"] == 1
    staff = await api.client.get(path, headers=api.headers("sam", "staff"))
    assert staff.status_code == 200


async def test_own_orders_are_listed_newest_first_with_a_cursor(api: Api, products: dict[str, int]) -> None:
    user = unique("alice")
    ids = [(await api.order(user, [{"product_id": products["shoe"], "quantity": n}]))["id"] for n in (1, 2, 3)]
    await api.order(unique("bob"), [{"product_id": products["shoe"], "quantity": 1}])
    first = (await api.client.get("/orders?limit=2", headers=api.headers(user))).json()
    assert [o["id"] for o in first["items"]] == ids[:0:-1] and first["next_cursor"] == str(ids[1])
    assert first["stream"]["offset"] == 3  # user#{id} got one summary per order
    rest = (await api.client.get(f"/orders?limit=2&cursor={first['next_cursor']}", headers=api.headers(user))).json()
    assert [o["id"] for o in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    bad = await api.client.get("/orders?cursor=abc", headers=api.headers(user))
    assert bad.status_code == 422


async def test_tenant_members_share_orders_and_other_tenants_see_nothing(api: Api, products: dict[str, int]) -> None:
    acme, other = unique("acme"), unique("globex")
    alice, carl = unique("alice"), unique("carl")
    order = await api.order(alice, [{"product_id": products["shoe"], "quantity": 1}], tenant=acme)
    path = f"/orders/{order['id']}"
    colleague = api.headers(carl, tenant=acme)
    assert (await api.client.get(path, headers=colleague)).status_code == 200
    assert (await api.client.post(f"{path}/cancel", headers=colleague)).status_code == 403
    outsider = api.headers(unique("olga"), tenant=other)
    assert (await api.client.get(path, headers=outsider)).status_code == 404
    desk = (await api.client.get(f"/tenants/{acme}/orders", headers=colleague)).json()
    assert [o["id"] for o in desk["items"]] == [order["id"]] and desk["stream"]["offset"] == 1
    assert (await api.client.get(f"/tenants/{acme}/orders", headers=outsider)).status_code == 403
    assert (await api.client.get(f"/tenants/{other}/orders", headers=outsider)).json()["items"] == []


def verify_grant(dev_keys: Path, token: str) -> SubscriptionClaims:
    return TokenVerifier(KeySet.load(dev_keys / "trusted.json"), audience="flashline").verify(token, SubscriptionClaims)


async def test_order_grants_are_signed_by_orders_for_the_callers_own_sub(
    api: Api, products: dict[str, int], dev_keys: Path
) -> None:
    acme, alice, carl = unique("acme"), unique("alice"), unique("carl")
    order = await api.order(alice, [{"product_id": products["shoe"], "quantity": 1}], tenant=acme)
    path = f"/orders/{order['id']}/subscription-token"
    for user, headers in (
        (alice, api.headers(alice, tenant=acme)),
        ("sam", api.headers("sam", "staff")),
        (carl, api.headers(carl, tenant=acme)),
    ):
        response = await api.client.post(path, headers=headers)
        assert response.status_code == 200, response.text
        grant = response.json()
        claims = verify_grant(dev_keys, grant["token"])
        assert (claims.sub, claims.channel, claims.iss) == (user, f"order:{order['id']}", "flashline-orders")
        assert grant["channel"] == f"order:{order['id']}" and grant["expires_at"]


async def test_tenant_grants_only_for_members(api: Api, dev_keys: Path) -> None:
    acme = unique("acme")
    member = await api.client.post(f"/tenants/{acme}/subscription-token", headers=api.headers("carl", tenant=acme))
    assert member.status_code == 200
    claims = verify_grant(dev_keys, member.json()["token"])
    assert (claims.sub, claims.channel) == ("carl", f"tenant:{acme}")
    for headers in (api.headers("olga", tenant=unique("globex")), api.headers("bob"), api.headers("sam", "staff")):
        refused = await api.client.post(f"/tenants/{acme}/subscription-token", headers=headers)
        assert refused.status_code == 403 and "members" in refused.json()["detail"]


async def test_the_order_channel_holds_the_latest_state_at_the_orders_version(
    api: Api, products: dict[str, int]
) -> None:
    user = unique("alice")
    order = await api.order(user, [{"product_id": products["laces"], "quantity": 1}])
    await api.client.post(f"/orders/{order['id']}/cancel", json={"reason": "oops"}, headers=api.headers(user))
    latest = (await api.client.get(f"/internal/channels/order:{order['id']}", headers=GATEWAY)).json()
    assert latest["offset"] == 2 and latest["epoch"] == order["stream"]["epoch"]
    assert latest["data"] == {
        **latest["data"],
        "order_id": order["id"],
        "status": "cancelled",
        "version": 2,
        "reason": "oops",
    }
    summary = (await api.client.get(f"/internal/channels/user%23{user}", headers=GATEWAY)).json()
    assert summary["data"]["status"] == "cancelled" and summary["data"]["kind"] == "order_status"
