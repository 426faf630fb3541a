"""Isolation: user B never receives a publication of user A's order or cart, whatever B tries.

Alice's order moves pending -> confirmed -> paid -> packed and her cart changes while Bob, on
every gateway pod, tries everything the protocol offers: subscribing with no grant, with his own
grants, with Alice's stolen grant, recovery from guessed (and leaked) positions, history,
presence, server-side subscriptions in his token, and REST for grants. Alice's own subscribers
(the official SDK) are the positive control: the publications did flow.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .clients import create_product, place_order, subscribe, wait_for_status
from .conftest import Stack
from .security_helpers import Forge, Raw, connected, error_code
from .test_cart_sync import put_item

PERMISSION_DENIED = 103


async def _order_grant(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> httpx.Response:
    return await http.post(f"{stack.url('orders')}/orders/{order_id}/subscription-token", headers=stack.auth(user))


async def _attempts(bob: Raw, channel: str, grants: list[str], leaked: dict[str, Any]) -> None:
    """Every way in for ``channel``; each must be refused and yield nothing."""
    tries: list[tuple[str, dict[str, Any]]] = []
    for token in ["", *grants]:
        tries.append(("subscribe", {"channel": channel, "token": token}))
        for epoch, offset in [("", 0), (leaked.get("epoch", ""), 0), (leaked.get("epoch", ""), 1), ("x", 999)]:
            tries.append(
                (
                    "subscribe",
                    {"channel": channel, "token": token, "recover": True, "epoch": epoch, "offset": offset, "flag": 2},
                )
            )
    for method in ("history", "presence", "presence_stats"):
        since = {"offset": 0, "epoch": leaked.get("epoch", "")}
        tries.append((method, {"channel": channel, "limit": -1, "since": since}))
    tries.append(("sub_refresh", {"channel": channel, "token": grants[-1] if grants else "x"}))
    tries.append(("unsubscribe", {"channel": channel}))
    for method, params in tries:
        reply = await bob.call(method, params)
        if method == "unsubscribe":
            continue
        assert error_code(reply) in (PERMISSION_DENIED, 107), (method, params, reply)
        assert not reply.get(method), (method, reply)


async def test_bob_never_receives_alices_order_or_cart(http: httpx.AsyncClient, stack: Stack) -> None:
    forge = Forge(stack)
    product = await create_product(http, stack, stock=20)

    # Alice's cart (signed in) and her order; Bob's own order and cart give him genuine grants.
    alice_cart = (await http.post(f"{stack.url('cart')}/carts", headers=stack.auth("alice"))).json()
    bob_cart = (await http.post(f"{stack.url('cart')}/carts", headers=stack.auth("bob"))).json()
    guest_cart = (await http.post(f"{stack.url('cart')}/carts")).json()
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 1}])
    bob_order = await place_order(http, stack, "bob", [{"product_id": product["id"], "quantity": 1}])
    order_channel, cart_channel = f"order:{order['id']}", f"cart:{alice_cart['cart_id']}"

    # REST never hands Bob a grant for Alice's things.
    assert (await _order_grant(http, stack, "bob", order["id"])).status_code == 404
    response = await http.post(
        f"{stack.url('cart')}/carts/{alice_cart['cart_id']}/subscription-token", headers=stack.auth("bob")
    )
    assert response.status_code == 403, response.text

    alice_order_grant = (await _order_grant(http, stack, "alice", order["id"])).json()["token"]
    alice_cart_grant = (
        await http.post(
            f"{stack.url('cart')}/carts/{alice_cart['cart_id']}/subscription-token", headers=stack.auth("alice")
        )
    ).json()["token"]
    bob_order_grant = (await _order_grant(http, stack, "bob", bob_order["id"])).json()["token"]
    bob_cart_grant = (
        await http.post(
            f"{stack.url('cart')}/carts/{bob_cart['cart_id']}/subscription-token", headers=stack.auth("bob")
        )
    ).json()["token"]
    guest_grant = (
        await http.post(
            f"{stack.url('cart')}/carts/{guest_cart['cart_id']}/subscription-token",
            headers={"X-Cart-Token": guest_cart["cart_token"]},
        )
    ).json()["token"]
    leaked_order = (await http.get(f"{stack.url('orders')}/orders/{order['id']}", headers=stack.auth("alice"))).json()[
        "stream"
    ]
    leaked_cart = alice_cart.get("stream") or {}

    # Alice watches (positive control).
    alice_order = await subscribe(
        stack.gateway_urls[0], order_channel, token=stack.token("alice"), sub_token=alice_order_grant
    )
    alice_tab = await subscribe(
        stack.gateway_urls[1], cart_channel, token=stack.token("alice"), sub_token=alice_cart_grant
    )

    # Bob on every pod, signed in (with server-side channels asked for) and anonymous.
    bob_token = forge.user("bob", claims={"channels": [order_channel, cart_channel, "user#alice"]})
    bobs = [await connected(url, bob_token) for url in stack.gateway_urls]
    anon = await connected(stack.gateway_urls[2])
    try:
        for bob in bobs:
            await _attempts(bob, order_channel, [bob_order_grant, alice_order_grant, bob_cart_grant], leaked_order)
            await _attempts(bob, cart_channel, [bob_cart_grant, alice_cart_grant, guest_grant], leaked_cart)
            await _attempts(bob, "user#alice", [bob_order_grant], {})
        await _attempts(anon, order_channel, [alice_order_grant, guest_grant], leaked_order)
        await _attempts(anon, cart_channel, [alice_cart_grant, guest_grant], leaked_cart)
        await _attempts(anon, "user#alice", [], {})

        # Now Alice's order and cart move.
        await wait_for_status(http, stack, "alice", order["id"], "confirmed")
        pay = await http.post(f"{stack.url('orders')}/orders/{order['id']}/pay", headers=stack.auth("alice"))
        assert pay.status_code == 200, pay.text
        packed = await http.post(
            f"{stack.url('orders')}/orders/{order['id']}/status",
            json={"status": "packed"},
            headers=stack.auth("carol", "staff"),
        )
        assert packed.status_code == 200, packed.text
        response = await put_item(http, stack, alice_cart, product["id"], 3, auth=stack.auth("alice"))
        assert response.status_code == 200, response.text
        cart_version = response.json()["version"]

        await alice_order.wait_for(lambda d: d["status"] == "packed")
        await alice_tab.wait_for(lambda d: d["version"] == cart_version)

        # Bob, once more after the publications exist, with recovery from the leaked positions.
        for bob in bobs:
            await _attempts(bob, order_channel, [alice_order_grant], leaked_order)
            await _attempts(bob, cart_channel, [alice_cart_grant], leaked_cart)
        await asyncio.sleep(0.5)

        for raw in [*bobs, anon]:
            leaked = [p for p in raw.pushes if p.get("channel") in (order_channel, cart_channel, "user#alice")]
            assert not leaked, leaked
            assert all(str(order["id"]) not in str(p) or "stock:" in str(p.get("channel")) for p in raw.pushes)
            assert not raw._reader.done(), raw.close_code  # refused, not disconnected: still listening
    finally:
        for raw in [*bobs, anon]:
            await raw.close()
        await alice_order.close()
        await alice_tab.close()

    # Alice received them all, so there was something to leak.
    assert {"paid", "packed"} <= {d["status"] for d in alice_order.received}


async def test_rest_object_level_authorization(http: httpx.AsyncClient, stack: Stack) -> None:
    """Another user's order is 404 (existence never revealed), another's cart 403, as documented."""
    product = await create_product(http, stack, stock=5)
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 1}])
    orders = stack.url("orders")
    for user in ("bob", "mallory"):
        auth = stack.auth(user)
        assert (await http.get(f"{orders}/orders/{order['id']}", headers=auth)).status_code == 404
        assert (await http.post(f"{orders}/orders/{order['id']}/pay", headers=auth)).status_code == 404
        assert (await http.post(f"{orders}/orders/{order['id']}/cancel", headers=auth)).status_code == 404
        assert (await http.post(f"{orders}/orders/{order['id']}/subscription-token", headers=auth)).status_code == 404
        listed = (await http.get(f"{orders}/orders", headers=auth)).json()
        assert all(o["id"] != order["id"] for o in listed.get("orders", listed.get("items", [])))
    unknown = 10**12
    assert (await http.get(f"{orders}/orders/{unknown}", headers=stack.auth("bob"))).status_code == 404
    # another tenant's orders and grant
    other = stack.auth("bob", tenant="globex")
    assert (await http.get(f"{orders}/tenants/acme/orders", headers=other)).status_code in (403, 404)
    assert (await http.post(f"{orders}/tenants/acme/subscription-token", headers=other)).status_code in (403, 404)

    carts = stack.url("cart")
    mine = (await http.post(f"{carts}/carts", headers=stack.auth("alice"))).json()
    guest = (await http.post(f"{carts}/carts")).json()
    for cart, good in ((mine, stack.auth("alice")), (guest, {"X-Cart-Token": guest["cart_token"]})):
        cid = cart["cart_id"]
        assert (await http.get(f"{carts}/carts/{cid}", headers=good)).status_code == 200
        for bad in (stack.auth("bob"), {"X-Cart-Token": "guess"}, {}, {**stack.auth("bob"), "X-Cart-Token": "x"}):
            assert (await http.get(f"{carts}/carts/{cid}", headers=bad)).status_code == 403
            put = await http.put(f"{carts}/carts/{cid}/items/{product['id']}", json={"quantity": 1}, headers=bad)
            assert put.status_code == 403, put.text
            assert (await http.delete(f"{carts}/carts/{cid}/items/{product['id']}", headers=bad)).status_code == 403
            grant = await http.post(f"{carts}/carts/{cid}/subscription-token", headers=bad)
            assert grant.status_code == 403, grant.text
    # an unknown cart looks exactly like a foreign one
    assert (await http.get(f"{carts}/carts/{'A' * 22}", headers=stack.auth("bob"))).status_code == 403
    # the guest cart cannot be merged by someone without its token
    merge = await http.post(
        f"{carts}/carts/{guest['cart_id']}/merge", headers={**stack.auth("bob"), "X-Cart-Token": "guess"}
    )
    assert merge.status_code == 403, merge.text
