"""Duplicate and reordered deliveries through the running system.

Real events of a saga are captured off the events exchange (a tap queue on the stack's vhost) and
put back on the bus: the same events again (what a relay re-sending after a crash or a broker
redelivery produces), and pairs in swapped order (the same kind of event, for an aggregate the
consumer has not seen, arriving in the wrong order). Afterwards the REST resources and the stock
are what one in-order delivery leaves, and the push channels carry nothing beyond the
publications that delivery legitimately makes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from flashline_contracts.topology import PUSH_EXCHANGE
from flashline_service.testing import Tap

from .clients import create_product, get_product, order_status, place_order, wait_for_status
from .conftest import Stack, eventually
from .faults import republish


@pytest.fixture
async def taps(fault_stack: Stack) -> AsyncIterator[tuple[Tap, Tap]]:
    """(every integration event, every push publication) on the fault stack from now on."""
    events = await Tap.open(fault_stack.amqp_url, ["#"])
    pushes = await Tap.open(fault_stack.amqp_url, [""], exchange=PUSH_EXCHANGE)
    try:
        yield events, pushes
    finally:
        await events.close()
        await pushes.close()


def captured(tap: Tap, event_type: str, **match: Any) -> list[dict[str, Any]]:
    """Whole envelopes (not just payloads) of ``event_type`` whose payload fields match."""
    return [
        m
        for m in tap.messages
        if m.get("type") == event_type and all(m["payload"].get(k) == v for k, v in match.items())
    ]


def one(tap: Tap, event_type: str, **match: Any) -> dict[str, Any]:
    found = captured(tap, event_type, **match)
    assert len(found) == 1, (event_type, match, found)
    return found[0]


def renamed(envelope: dict[str, Any], **payload: Any) -> dict[str, Any]:
    """A copy of a captured event, as a new event (new id) with some payload fields replaced."""
    body = {**envelope["payload"], **payload}
    aggregate = body.get("order_id", envelope["aggregate_id"])
    return {**envelope, "event_id": str(uuid.uuid4()), "aggregate_id": str(aggregate), "payload": body}


def fresh_order_id() -> int:
    """An order id the orders service will never hand out (its sequence is far below)."""
    return 10**15 + uuid.uuid4().int % 10**9


async def new_cart(http: httpx.AsyncClient, stack: Stack, user: str | None = None) -> dict[str, Any]:
    response = await http.post(f"{stack.url('cart')}/carts", headers=stack.auth(user) if user else {})
    assert response.status_code == 201, response.text
    cart = response.json()
    cart["headers"] = stack.auth(user) if user else {"X-Cart-Token": cart["cart_token"]}
    return cart


async def put_item(http: httpx.AsyncClient, stack: Stack, cart: dict[str, Any], product_id: int, qty: int) -> None:
    async def attempt() -> bool:
        response = await http.put(
            f"{stack.url('cart')}/carts/{cart['cart_id']}/items/{product_id}",
            json={"quantity": qty},
            headers=cart["headers"],
        )
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200  # 404 until the cart has learnt the product

    await eventually(attempt)


async def get_cart(http: httpx.AsyncClient, stack: Stack, cart: dict[str, Any]) -> dict[str, Any]:
    response = await http.get(f"{stack.url('cart')}/carts/{cart['cart_id']}", headers=cart["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def cancel(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> None:
    response = await http.post(f"{stack.url('orders')}/orders/{order_id}/cancel", headers=stack.auth(user))
    assert response.status_code == 200, response.text


async def available(http: httpx.AsyncClient, stack: Stack, product_id: int, units: int) -> None:
    async def check() -> bool:
        return (await get_product(http, stack, product_id))["available"] == units

    await eventually(check, timeout=20)


async def settle(http: httpx.AsyncClient, stack: Stack) -> None:
    """Wait until every queue has worked through what was published before this call.

    A sentinel saga published afterwards passes through the catalog, orders and cart queues
    (product, order, reservation, stock change); once its effects show, the earlier messages
    were delivered before it (consumers take messages in queue order and handle each in
    milliseconds), and a short pause lets the last of them commit and their publications relay.
    """
    product = await create_product(http, stack, stock=2)
    cart = await new_cart(http, stack)
    await put_item(http, stack, cart, product["id"], 1)
    await place_order(http, stack, f"sentinel-{uuid.uuid4().hex[:6]}", [{"product_id": product["id"], "quantity": 1}])

    async def cart_follows() -> bool:
        return (await get_cart(http, stack, cart))["items"][0]["available"] == 1

    await eventually(cart_follows)
    await asyncio.sleep(1.0)


async def order_view(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> dict[str, Any]:
    order = await order_status(http, stack, user, order_id)
    return {k: order[k] for k in ("status", "version", "history", "stream", "total_cents")}


def counts(pushes: Tap, channels: list[str]) -> dict[str, int]:
    return {channel: len(pushes.publications(channel)) for channel in channels}


async def test_every_event_of_a_saga_delivered_again_changes_nothing(
    http: httpx.AsyncClient, fault_stack: Stack, taps: tuple[Tap, Tap]
) -> None:
    stack = fault_stack
    events, pushes = taps
    user = f"dup-{uuid.uuid4().hex[:8]}"
    product = await create_product(http, stack, stock=5, price_cents=1200)
    cart = await new_cart(http, stack, user)
    await put_item(http, stack, cart, product["id"], 2)
    order = await place_order(
        http, stack, user, [{"product_id": product["id"], "quantity": 2}], cart_id=cart["cart_id"]
    )
    oid, pid = order["id"], product["id"]
    await wait_for_status(http, stack, user, oid, "confirmed")

    async def emptied() -> bool:
        return (await get_cart(http, stack, cart))["items"] == []

    await eventually(emptied)
    await cancel(http, stack, user, oid)
    await available(http, stack, pid, 5)

    async def released() -> bool:
        return bool(captured(events, "StockReleased", order_id=oid))

    await eventually(released)
    await settle(http, stack)

    saga = [m for m in events.messages if m["payload"].get("order_id") == oid or m["payload"].get("product_id") == pid]
    kinds = sorted({m["type"] for m in saga})
    assert kinds == sorted(
        {
            "ProductChanged",
            "StockChanged",
            "OrderPlaced",
            "OrderStatusChanged",
            "StockReserved",
            "OrderCancelled",
            "StockReleased",
        }
    ), kinds
    channels = [f"stock:{pid}", f"order:{oid}", f"cart:{cart['cart_id']}", f"user#{user}"]
    before = (
        await get_product(http, stack, pid),
        await order_view(http, stack, user, oid),
        await get_cart(http, stack, cart),
        counts(pushes, channels),
    )
    assert before[1]["status"] == "cancelled" and before[0]["available"] == 5

    # The same events (same ids) twice more, in their original order, then all of them reversed.
    await republish(stack.amqp_url, saga + saga + saga[::-1])
    await settle(http, stack)

    after = (
        await get_product(http, stack, pid),
        await order_view(http, stack, user, oid),
        await get_cart(http, stack, cart),
        counts(pushes, channels),
    )
    assert after == before
    assert len(captured(events, "StockReserved", order_id=oid)) == 1 + 3  # the original and our three copies
    assert len(captured(events, "StockReleased", order_id=oid)) == 1 + 3


async def test_events_in_swapped_order_leave_the_in_order_state(
    http: httpx.AsyncClient, fault_stack: Stack, taps: tuple[Tap, Tap]
) -> None:
    stack = fault_stack
    events, pushes = taps
    user = f"swap-{uuid.uuid4().hex[:8]}"
    product = await create_product(http, stack, stock=3, price_cents=1000)
    pid = product["id"]
    guest = await new_cart(http, stack)
    await put_item(http, stack, guest, pid, 2)  # fits: 2 of 3

    # A real saga to capture: confirmed (3 -> 1: the guest's line turns short), then cancelled (back to 3).
    cancelled = await place_order(http, stack, user, [{"product_id": pid, "quantity": 2}])
    await wait_for_status(http, stack, user, cancelled["id"], "confirmed")
    await cancel(http, stack, user, cancelled["id"])
    await available(http, stack, pid, 3)
    # And one that expires (the payment window is 4 s on this stack).
    expired = await place_order(http, stack, user, [{"product_id": pid, "quantity": 1}])
    await wait_for_status(http, stack, user, expired["id"], "confirmed")
    await wait_for_status(http, stack, user, expired["id"], "expired")
    await available(http, stack, pid, 3)
    # A newer price: orders' and the cart's read models hold it.
    response = await http.put(
        f"{stack.url('catalog')}/products/{pid}",
        json={"name": product["name"], "price_cents": 1300},
        headers=stack.auth("carol", "staff"),
    )
    assert response.status_code == 200, response.text
    await settle(http, stack)

    placed = one(events, "OrderPlaced", order_id=cancelled["id"])
    order_cancelled = one(events, "OrderCancelled", order_id=cancelled["id"])
    order_expired = one(events, "OrderExpired", order_id=expired["id"])
    reserved = one(events, "StockReserved", order_id=cancelled["id"])
    reserved_expired = one(events, "StockReserved", order_id=expired["id"])
    stock = sorted(captured(events, "StockChanged", product_id=pid), key=lambda m: m["payload"]["version"])
    short_stock = next(m for m in stock if m["payload"]["available"] == 1)  # the guest's line was short then
    assert stock[-1]["payload"]["available"] == 3
    prices = [m for m in captured(events, "ProductChanged", product_id=pid)]
    assert [m["payload"]["price_cents"] for m in prices] == [1000, 1300]
    statuses = {m["payload"]["status"]: m for m in captured(events, "OrderStatusChanged", order_id=cancelled["id"])}
    assert set(statuses) == {"pending", "confirmed", "cancelled"}

    owner = f"swap-owner-{uuid.uuid4().hex[:6]}"
    owned = await new_cart(http, stack, owner)
    await put_item(http, stack, owned, pid, 1)
    ghost_x, ghost_y, ghost_z = fresh_order_id(), fresh_order_id(), fresh_order_id()

    channels = [f"stock:{pid}", f"order:{cancelled['id']}", f"order:{expired['id']}", f"cart:{guest['cart_id']}"]
    before_product = await get_product(http, stack, pid)
    before_orders = [await order_view(http, stack, user, o["id"]) for o in (cancelled, expired)]
    before_guest = await get_cart(http, stack, guest)
    before_owned = await get_cart(http, stack, owned)
    before_pushes = counts(pushes, [*channels, f"cart:{owned['cart_id']}"])
    assert before_guest["items"][0]["short"] is False and before_guest["items"][0]["unit_price_cents"] == 1300

    swapped = [
        # catalog: the cancellation (or expiry) of an order before the order itself
        renamed(order_cancelled, order_id=ghost_x),
        renamed(placed, order_id=ghost_x),
        renamed(order_expired, order_id=ghost_y),
        renamed(placed, order_id=ghost_y),
        # orders: a reservation after the order was cancelled, and after it expired
        renamed(reserved),
        renamed(reserved_expired),
        # cart: an older stock level after the newest one (it would flag the guest's line short)
        renamed(short_stock),
        renamed(stock[0]),
        # orders and cart: the old price after the new one
        renamed(prices[0]),
        # cart: an order's status changes last to first (the confirmation empties the cart it came from)
        *(
            renamed(statuses[s], order_id=ghost_z, user_id=owner, cart_id=owned["cart_id"])
            for s in ("cancelled", "confirmed", "pending")
        ),
    ]
    await republish(stack.amqp_url, swapped)
    await settle(http, stack)

    # catalog: neither ghost order was reserved, nothing was decided for them
    assert (await get_product(http, stack, pid)) == before_product
    for ghost in (ghost_x, ghost_y):
        for kind in ("StockReserved", "StockRejected", "StockReleased"):
            assert captured(events, kind, order_id=ghost) == [], (kind, ghost)
    # orders: the late reservations changed neither order
    assert [await order_view(http, stack, user, o["id"]) for o in (cancelled, expired)] == before_orders
    # cart: the newer stock level and price stand; the order's confirmation emptied the owner's cart once
    assert await get_cart(http, stack, guest) == before_guest
    owned_after = await get_cart(http, stack, owned)
    assert owned_after["items"] == [] and owned_after["version"] == before_owned["version"] + 1
    expected_pushes = {**before_pushes, f"cart:{owned['cart_id']}": before_pushes[f"cart:{owned['cart_id']}"] + 1}
    assert counts(pushes, [*channels, f"cart:{owned['cart_id']}"]) == expected_pushes
    # orders prices new orders at the newer price
    buyer = f"swap-buyer-{uuid.uuid4().hex[:6]}"
    fresh = await place_order(http, stack, buyer, [{"product_id": pid, "quantity": 1}])
    assert fresh["total_cents"] == 1300
