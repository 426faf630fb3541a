"""The checkout saga across catalog and orders through the real bus, watched live on the gateway."""

from __future__ import annotations

import httpx

from .clients import create_product, get_product, place_order, subscribe, wait_for_status
from .conftest import Stack, eventually


async def test_order_runs_from_placed_to_delivered_and_watchers_see_it_live(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    product = await create_product(http, stack, stock=3, price_cents=2500)
    watcher = await subscribe(stack.gateway_urls[0], f"stock:{product['id']}")
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 2}])
    assert order["status"] == "pending" and order["total_cents"] == 5000

    grant = await http.post(
        f"{stack.url('orders')}/orders/{order['id']}/subscription-token", headers=stack.auth("alice")
    )
    assert grant.status_code == 200, grant.text
    owner = await subscribe(
        stack.gateway_urls[1], f"order:{order['id']}", token=stack.token("alice"), sub_token=grant.json()["token"]
    )
    try:
        await wait_for_status(http, stack, "alice", order["id"], "confirmed")
        stock = await watcher.wait_for(lambda d: d["available"] == 1)
        assert stock["status"] in ("low", "in_stock")
        assert (await get_product(http, stack, product["id"]))["available"] == 1

        pay = await http.post(f"{stack.url('orders')}/orders/{order['id']}/pay", headers=stack.auth("alice"))
        assert pay.status_code == 200, pay.text
        for status in ("packed", "shipped", "delivered"):
            response = await http.post(
                f"{stack.url('orders')}/orders/{order['id']}/status",
                json={"status": status},
                headers=stack.auth("carol", "staff"),
            )
            assert response.status_code == 200, response.text
        final = await wait_for_status(http, stack, "alice", order["id"], "delivered")
        assert [h["status"] for h in final["history"]] == [
            "pending",
            "confirmed",
            "paid",
            "packed",
            "shipped",
            "delivered",
        ]
        await owner.wait_for(lambda d: d["status"] == "delivered")
        seen = [d["status"] for d in owner.received]
        assert seen == sorted(seen, key=["pending", "confirmed", "paid", "packed", "shipped", "delivered"].index)
    finally:
        await watcher.close()
        await owner.close()


async def test_short_stock_rejects_and_keeps_stock(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=1)
    order = await place_order(http, stack, "bob", [{"product_id": product["id"], "quantity": 2}])
    rejected = await wait_for_status(http, stack, "bob", order["id"], "rejected")
    assert rejected["history"][-1]["reason"]
    assert (await get_product(http, stack, product["id"]))["available"] == 1


async def test_cancel_and_expiry_release_stock(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=5)
    cancelled = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 2}])
    expiring = await place_order(http, stack, "bob", [{"product_id": product["id"], "quantity": 3}])
    await wait_for_status(http, stack, "alice", cancelled["id"], "confirmed")
    await wait_for_status(http, stack, "bob", expiring["id"], "confirmed")
    assert (await get_product(http, stack, product["id"]))["available"] == 0

    response = await http.post(f"{stack.url('orders')}/orders/{cancelled['id']}/cancel", headers=stack.auth("alice"))
    assert response.status_code == 200, response.text
    await wait_for_status(http, stack, "bob", expiring["id"], "expired")  # payment window is 4 s here

    async def restored() -> bool:
        return (await get_product(http, stack, product["id"]))["available"] == 5

    await eventually(restored, timeout=20)


async def test_someone_elses_order_is_invisible(http: httpx.AsyncClient, stack: Stack) -> None:
    product = await create_product(http, stack, stock=2)
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 1}])
    for path in (f"/orders/{order['id']}", f"/orders/{order['id']}/subscription-token"):
        method = http.get if path.endswith(str(order["id"])) else http.post
        response = await method(f"{stack.url('orders')}{path}", headers=stack.auth("mallory"))
        assert response.status_code == 404, (path, response.status_code)
