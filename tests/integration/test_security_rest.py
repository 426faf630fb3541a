"""REST: every route of every service refuses a missing or wrong user token.

Routes come from each running service's ``/openapi.json``, so a new route is checked the day it
is added: unless it is listed in ``ANONYMOUS`` below it must answer 401 without a token, and every
route, listed or not, must answer 401 to a forged, expired, misdirected or malformed token (a bad
token is never treated as "no token"). Role checks: staff-only and customer-only routes answer 403
to the other role.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from flashline_auth.keys import SigningKey

from .conftest import Stack
from .security_helpers import Forge, hs256, unsigned

SERVICES = ("catalog", "orders", "cart")

# (service, METHOD, path template) that answer without a user token (anonymous guests, public reads).
ANONYMOUS: dict[tuple[str, str, str], set[int]] = {
    ("catalog", "GET", "/products"): {200},
    ("catalog", "GET", "/products/{product_id}"): {404},
    ("cart", "POST", "/carts"): {201},
    # guest carts open with X-Cart-Token instead: without it, 403 "cart not accessible"
    ("cart", "GET", "/carts/{cart_id}"): {403},
    ("cart", "PUT", "/carts/{cart_id}/items/{product_id}"): {403},
    ("cart", "DELETE", "/carts/{cart_id}/items/{product_id}"): {403},
    ("cart", "POST", "/carts/{cart_id}/subscription-token"): {403},
}

# public reads that take no identity at all, so they never look at a token either
IGNORE_TOKEN = {("catalog", "GET", "/products"), ("catalog", "GET", "/products/{product_id}")}

# valid bodies where an invalid one would be refused (422) before the credential is examined
BODIES: dict[tuple[str, str, str], Any] = {("cart", "PUT", "/carts/{cart_id}/items/{product_id}"): {"quantity": 1}}

STAFF_ONLY = {
    ("catalog", "POST", "/products"),
    ("catalog", "PUT", "/products/{product_id}"),
    ("catalog", "POST", "/products/{product_id}/restock"),
    ("orders", "POST", "/orders/{order_id}/status"),
}

CUSTOMER_ONLY = {
    ("orders", "POST", "/orders"),
    ("cart", "GET", "/carts/mine"),
    ("cart", "POST", "/carts/{cart_id}/merge"),
    ("cart", "POST", "/carts"),
}


def _routes(stack: Stack) -> list[tuple[str, str, str]]:
    found = []
    for svc in SERVICES:
        spec = httpx.get(f"{stack.url(svc)}/openapi.json", timeout=10).json()
        for path, item in spec["paths"].items():
            for method in item:
                if method in ("get", "post", "put", "patch", "delete"):
                    found.append((svc, method.upper(), path))
    return found


def _concrete(path: str) -> str:
    """Fill path parameters with values that pass validation (ids that do not exist)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return "Zm9vYmFyYmF6cXV4cXV1eA" if name == "cart_id" else ("acme" if name.endswith("tenant_id") else "987654")

    return re.sub(r"\{([^}]+)\}", value, path)


async def _call(http: httpx.AsyncClient, stack: Stack, route: tuple[str, str, str], headers: dict[str, str]) -> int:
    svc, method, path = route
    body: Any = BODIES.get(route, {}) if method in ("POST", "PUT", "PATCH") else None
    response = await http.request(
        method, f"{stack.url(svc)}{_concrete(path)}", json=body, headers={"Idempotency-Key": "security-rest", **headers}
    )
    return response.status_code


def _bad_tokens(forge: Forge) -> dict[str, str]:
    identity_kid = forge.key("identity").kid
    return {
        "garbage": "not-a-jwt",
        "forged signature": forge.user("alice", key=forge.impostor("identity")),
        "alg none": unsigned({"alg": "none", "kid": identity_kid}, forge.base_claims("identity", sub="alice")),
        "HS256 with the public key": hs256(
            {"alg": "HS256", "kid": identity_kid},
            forge.base_claims("identity", sub="alice"),
            forge.public_pem("identity"),
        ),
        "unknown kid": forge.user("alice", key=SigningKey.generate(kid="nobody-1", issuer="flashline-identity")),
        "expired": forge.user("alice", now=time.time() - 3600, ttl=600),
        "not yet valid": forge.user("alice", claims={"nbf": int(time.time()) + 600}),
        "wrong audience": forge.user("alice", audience="flashline-staging"),
        "wrong issuer": forge.user("alice", claims={"iss": "flashline-cart"}),
        "a grant, not a user token": forge.grant("orders", user="alice", channel="order:1"),
        "staff token signed by a service key": forge.mint("catalog", {"sub": "carol", "role": "staff"}),
    }


async def test_openapi_lists_the_routes_this_test_classifies(stack: Stack) -> None:
    routes = set(_routes(stack))
    assert len(routes) >= 15, routes
    for listed in [*ANONYMOUS, *IGNORE_TOKEN, *BODIES, *STAFF_ONLY, *CUSTOMER_ONLY]:
        assert listed in routes, f"{listed} is classified here but no longer served: update this test"


async def test_every_route_refuses_a_missing_token_unless_it_is_documented_anonymous(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    wrong = {}
    for route in _routes(stack):
        status = await _call(http, stack, route, {})
        allowed = ANONYMOUS.get(route, {401})
        if status not in allowed:
            wrong[route] = (status, allowed)
    assert not wrong, wrong


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "forged signature",
        "alg none",
        "HS256 with the public key",
        "unknown kid",
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "a grant, not a user token",
        "staff token signed by a service key",
    ],
)
async def test_every_route_refuses_a_bad_token(http: httpx.AsyncClient, stack: Stack, kind: str) -> None:
    token = _bad_tokens(Forge(stack))[kind]
    wrong = {}
    for route in _routes(stack):
        status = await _call(http, stack, route, {"Authorization": f"Bearer {token}"})
        if status != 401 and route not in IGNORE_TOKEN:
            wrong[route] = status
    assert not wrong, (kind, wrong)


@pytest.mark.parametrize(
    ("role", "routes", "other"), [("customer", STAFF_ONLY, "staff"), ("staff", CUSTOMER_ONLY, "customer")]
)
async def test_role_routes_refuse_the_other_role(
    http: httpx.AsyncClient, stack: Stack, role: str, routes: set[tuple[str, str, str]], other: str
) -> None:
    user = "carol" if role == "staff" else "bob"
    wrong = {}
    for route in sorted(routes):
        status = await _call(http, stack, route, stack.auth(user, role))
        if status != 403:
            wrong[route] = status
    assert not wrong, wrong


async def test_internal_channel_lookup_requires_the_gateways_key(http: httpx.AsyncClient, stack: Stack) -> None:
    """The position lookup returns full state, so only the gateway's shared key opens it."""
    from flashline_contracts.topology import DEV_INTERNAL_API_KEY

    from .clients import create_product, place_order

    product = await create_product(http, stack, stock=3)
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 1}])
    url = f"{stack.url('orders')}/internal/channels/order:{order['id']}"
    for headers in ({}, stack.auth("bob"), stack.auth("alice"), {"Authorization": "Bearer guessed"}):
        response = await http.get(url, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    gateway = await http.get(url, headers={"Authorization": f"Bearer {DEV_INTERNAL_API_KEY}"})
    assert gateway.status_code == 200 and gateway.json()["data"]["order_id"] == order["id"]


async def test_nul_characters_in_input_are_refused_not_500(http: httpx.AsyncClient, stack: Stack) -> None:
    """PostgreSQL text cannot hold U+0000: found by schemathesis (a product name with a NUL was a 500)."""
    from .clients import create_product, place_order

    product = await create_product(http, stack, stock=5)
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 1}])
    staff, alice = stack.auth("carol", "staff"), stack.auth("alice")
    catalog, orders, carts = stack.url("catalog"), stack.url("orders"), stack.url("cart")
    body = {"sku": "SKU-NUL-1", "name": "bad\u0000name", "price_cents": 1, "currency": "EUR", "stock": 1}
    attempts = [
        ("POST", f"{catalog}/products", body, staff),
        ("PUT", f"{catalog}/products/{product['id']}", {"name": "x\u0000", "price_cents": 1}, staff),
        (
            "POST",
            f"{orders}/orders",
            {"items": [{"product_id": product["id"], "quantity": 1}], "cart_id": "c\u0000"},
            {**alice, "Idempotency-Key": "nul-1"},
        ),
        ("POST", f"{orders}/orders/{order['id']}/cancel", {"reason": "r\u0000"}, alice),
        ("GET", f"{orders}/tenants/a%00b/orders", None, stack.auth("alice", tenant="a")),
        ("GET", f"{carts}/carts/a%00b", None, alice),
        ("POST", f"{carts}/carts/a%00b/subscription-token", None, alice),
        ("PUT", f"{carts}/carts/a%00b/items/{product['id']}", {"quantity": 1}, alice),
    ]
    wrong = {}
    for method, url, json_body, headers in attempts:
        async with httpx.AsyncClient(timeout=10) as fresh:  # a 500 may close the keep-alive connection
            response = await fresh.request(method, url, json=json_body, headers=headers)
        if response.status_code >= 500:
            wrong[f"{method} {url}"] = response.status_code
    assert not wrong, wrong
