"""Cart sync across tabs through the gateway, the sold-out flag, and the cart emptied by an order."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .clients import Subscriber, create_product, place_order, subscribe, wait_for_status
from .conftest import Stack, eventually


async def new_guest_cart(http: httpx.AsyncClient, stack: Stack) -> dict[str, Any]:
    response = await http.post(f"{stack.url('cart')}/carts")
    assert response.status_code == 201, response.text
    return response.json()


async def put_item(
    http: httpx.AsyncClient,
    stack: Stack,
    cart: dict[str, Any],
    product_id: int,
    quantity: int,
    *,
    client_id: str = "",
    auth: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"X-Cart-Token": cart.get("cart_token") or "", "X-Client-Id": client_id, **(auth or {})}

    async def attempt() -> httpx.Response | None:
        response = await http.put(
            f"{stack.url('cart')}/carts/{cart['cart_id']}/items/{product_id}",
            json={"quantity": quantity},
            headers=headers,
        )
        return None if response.status_code == 404 else response  # 404 until the cart learns the product

    response = await eventually(attempt)
    assert isinstance(response, httpx.Response)
    return response


async def tab(
    http: httpx.AsyncClient, stack: Stack, cart: dict[str, Any], gateway: str, *, user: str | None = None
) -> Subscriber:
    """A browser tab on the cart: a guest (anonymous connection) or the signed-in owner."""
    headers = stack.auth(user) if user else {"X-Cart-Token": cart["cart_token"]}
    grant = await http.post(f"{stack.url('cart')}/carts/{cart['cart_id']}/subscription-token", headers=headers)
    assert grant.status_code == 200, grant.text
    token = stack.token(user) if user else ""
    return await subscribe(gateway, f"cart:{cart['cart_id']}", token=token, sub_token=grant.json()["token"])


async def test_a_change_in_one_tab_reaches_the_others_but_not_itself(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=10)
    cart = await new_guest_cart(http, stack)
    first = await tab(http, stack, cart, stack.gateway_urls[0])
    second = await tab(http, stack, cart, stack.gateway_urls[2])
    try:
        response = await put_item(http, stack, cart, product["id"], 2, client_id=first.client_id)
        assert response.status_code == 200, response.text
        version = response.json()["version"]
        seen = await second.wait_for(lambda d: d["version"] == version)
        assert [(i["product_id"], i["quantity"]) for i in seen["items"]] == [(product["id"], 2)]
        assert seen["origin_client"] == first.client_id
        await asyncio.sleep(0.5)  # give an echo every chance to arrive
        assert all(d["version"] != version for d in first.received)
    finally:
        await first.close()
        await second.close()


async def test_sold_out_flag_arrives_live(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=2)
    cart = await new_guest_cart(http, stack)
    assert (await put_item(http, stack, cart, product["id"], 2)).status_code == 200
    watcher = await tab(http, stack, cart, stack.gateway_urls[1])
    try:
        # Someone else buys one unit: the cart now holds more than is available.
        other = await place_order(http, stack, "bob", [{"product_id": product["id"], "quantity": 1}])
        await wait_for_status(http, stack, "bob", other["id"], "confirmed")
        flagged = await watcher.wait_for(lambda d: d["items"] and d["items"][0]["short"])
        assert flagged["items"][0]["available"] == 1 and flagged["items"][0]["quantity"] == 2
    finally:
        await watcher.close()


async def test_a_confirmed_order_empties_its_owners_cart_live(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=3)
    created = await http.post(f"{stack.url('cart')}/carts", headers=stack.auth("dana"))
    assert created.status_code in (200, 201), created.text
    cart = created.json()
    response = await put_item(http, stack, cart, product["id"], 2, auth=stack.auth("dana"))
    assert response.status_code == 200, response.text
    filled = response.json()["version"]
    watcher = await tab(http, stack, cart, stack.gateway_urls[0], user="dana")
    try:
        items = [{"product_id": product["id"], "quantity": 2}]
        order = await place_order(http, stack, "dana", items, cart_id=cart["cart_id"])
        await wait_for_status(http, stack, "dana", order["id"], "confirmed")
        emptied = await watcher.wait_for(lambda d: d["items"] == [] and d["version"] > filled)
        assert emptied["totals"]["subtotal_cents"] == 0
    finally:
        await watcher.close()
