"""Broker outage: the APIs keep answering, and once RabbitMQ is back nothing is lost or done twice.

Clients (the official centrifuge-python SDK) follow a product's ``stock:`` channel, the buyer's
``order:`` channels and ``user#`` channel on all three gateways. Orders are placed, paid,
cancelled and advanced by staff while the stack's vhost refuses every connection; those writes
land in the outboxes. When the broker is back, every order reaches its right final state, every
publication reaches its clients in order and without gaps (a phone that was offline recovers
what it missed), the catalog reserved each order's stock exactly once, and the cart service
emptied the cart an order came from exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from .clients import (
    LiveClient,
    Loader,
    Timeline,
    cancel,
    check_order_timeline,
    create_product,
    get_product,
    order_grant,
    order_loader,
    order_status,
    pay,
    place_order,
    product_loader,
    staff_move,
    wait_for_status,
)
from .conftest import Stack, eventually
from .faults import broker_outage, down, make_whole, outbox_rows, query

STOCK = 12
OUTAGE_SECONDS = 4.0
TEST_LIMIT_SECONDS = 55.0


@dataclass
class Tracked:
    """An order the test placed, the statuses it must go through, and its units."""

    name: str
    order_id: int
    quantity: int
    statuses: list[str]
    followers: list[Timeline]

    @property
    def holds_stock(self) -> bool:
        return self.statuses[-1] in ("confirmed", "paid", "packed", "shipped", "delivered")


async def test_broker_outage_loses_nothing_and_applies_nothing_twice(
    http: httpx.AsyncClient, fault_stack: Stack
) -> None:
    stack = fault_stack
    clients: list[LiveClient] = []
    try:
        async with asyncio.timeout(TEST_LIMIT_SECONDS):
            await _outage_scenario(http, stack, clients)
    finally:
        for client in clients:
            try:
                await asyncio.wait_for(client.close(), 5)
            except Exception:  # noqa: BLE001 - closing is best effort; the stack matters more
                pass
        repaired = await make_whole(stack)
    assert not down(stack)
    assert not repaired, f"processes that did not recover from the outage by themselves: {repaired}"


async def _outage_scenario(http: httpx.AsyncClient, stack: Stack, clients: list[LiveClient]) -> None:
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    product = await create_product(http, stack, stock=STOCK)
    product_id = product["id"]
    urls = stack.gateway_urls

    # Product page viewers (anonymous) on every gateway, and the buyer's three devices.
    viewers = [LiveClient(url, name=f"viewer-{i}") for i, url in enumerate(urls)]
    devices = [LiveClient(url, stack.token(buyer), name=f"device-{i}") for i, url in enumerate(urls)]
    clients += [*viewers, *devices]
    for client in clients:
        await client.connect()
    stock_lines = [await v.watch(f"stock:{product_id}", product_loader(http, stack, product_id)) for v in viewers]

    async def own_orders() -> tuple[int, str, Any]:
        response = await http.get(f"{stack.url('orders')}/orders", headers=stack.auth(buyer))
        assert response.status_code == 200, response.text
        page = response.json()
        return page["stream"]["offset"], page["stream"]["epoch"], page

    user_line = await devices[2].watch(f"user#{buyer}", own_orders)

    # Two carts hold the product: the buyer's (an order placed from it in the outage empties it),
    # and a guest's with 9 units, more than will be left (the cart flags the line short).
    buyer_cart = await open_cart(http, stack, stack.auth(buyer))
    await put_item(http, stack, buyer_cart["cart_id"], product_id, 2, stack.auth(buyer))
    guest_cart = await open_cart(http, stack, {})
    guest_headers = {"X-Cart-Token": guest_cart["cart_token"]}
    await put_item(http, stack, guest_cart["cart_id"], product_id, 9, guest_headers)
    cart_lines = {
        "buyer": await devices[1].watch(
            f"cart:{buyer_cart['cart_id']}",
            cart_loader(http, stack, buyer_cart["cart_id"], stack.auth(buyer)),
            token=await cart_grant(http, stack, buyer_cart["cart_id"], stack.auth(buyer)),
        ),
        "guest": await viewers[0].watch(
            f"cart:{guest_cart['cart_id']}",
            cart_loader(http, stack, guest_cart["cart_id"], guest_headers),
            token=await cart_grant(http, stack, guest_cart["cart_id"], guest_headers),
        ),
    }

    tracked: list[Tracked] = []

    async def order(name: str, quantity: int, statuses: list[str], cart_id: str | None = None) -> Tracked:
        items = [{"product_id": product_id, "quantity": quantity}]
        placed = await place_order(http, stack, buyer, items, cart_id=cart_id)
        grant = await order_grant(http, stack, buyer, placed["id"])
        i = len(tracked)
        followers = [
            await device.watch(f"order:{placed['id']}", order_loader(http, stack, buyer, placed["id"]), token=grant)
            for device in (devices[i % 3], devices[(i + 1) % 3])  # two devices on two gateways
        ]
        item = Tracked(name, placed["id"], quantity, statuses, followers)
        tracked.append(item)
        return item

    # Before the outage: three confirmed orders, two of them paid.
    delivered = await order("delivered", 2, ["pending", "confirmed", "paid", "packed", "shipped", "delivered"])
    refunded = await order("refunded", 1, ["pending", "confirmed", "paid", "cancelled"])
    lapsed = await order("lapsed", 3, ["pending", "confirmed", "expired"])  # nobody pays: its 4 s window closes
    for item in (delivered, refunded):
        await wait_for_status(http, stack, buyer, item.order_id, "confirmed", timeout=20)
        await pay(http, stack, buyer, item.order_id)
    await wait_for_status(http, stack, buyer, lapsed.order_id, "confirmed", timeout=20)
    # Confirmed just before the outage and paid in it (its 4 s payment window is still open then).
    paid_in_outage = await order("paid-in-outage", 1, ["pending", "confirmed", "paid"])
    await wait_for_status(http, stack, buyer, paid_in_outage.order_id, "confirmed", timeout=20)
    confirmed_at = time.monotonic()

    async with broker_outage(stack):
        cut_at = time.monotonic()
        assert cut_at - confirmed_at < 3.5, f"cutting the broker took {cut_at - confirmed_at:.1f} s"
        await pay(http, stack, buyer, paid_in_outage.order_id)
        # Staff work on, customers buy and change their minds: the REST APIs answer from the databases.
        for status in ("packed", "shipped", "delivered"):
            await staff_move(http, stack, delivered.order_id, status)
        await cancel(http, stack, refunded.order_id, stack.auth("carol", "staff"))
        paid_later = await order("paid-later", 2, ["pending", "confirmed", "paid"], buyer_cart["cart_id"])
        lapsed_later = await order("lapsed-later", 1, ["pending", "confirmed", "expired"])
        withdrawn = await order("withdrawn", 2, ["pending", "cancelled"])
        await cancel(http, stack, withdrawn.order_id, stack.auth(buyer))
        too_many = await order("too-many", STOCK - 1, ["pending", "rejected"])  # `delivered` holds 2 of 12
        # A phone goes offline in the middle of it (back once its backlog has gone past: it recovers).
        await devices[1].close()
        assert await outbox_rows(stack, "orders") > 0, "the writes wait in the orders outbox"
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        # Nothing got through: the orders placed in the outage are pending, the catalog never saw them.
        during = [paid_later, lapsed_later, withdrawn, too_many]
        for item in during[:2] + during[3:]:
            assert (await order_status(http, stack, buyer, item.order_id))["status"] == "pending"
        seen = await query(
            stack,
            "catalog",
            "SELECT order_id FROM order_outcomes WHERE order_id = ANY($1)",
            [t.order_id for t in during],
        )
        assert not seen, "no event crossed the broker during the outage"

    await wait_for_status(http, stack, buyer, paid_later.order_id, "confirmed", timeout=30)
    await pay(http, stack, buyer, paid_later.order_id)  # within its 4 s payment window

    # Every order reaches its final state, through exactly the statuses it should have.
    async def final_orders() -> dict[int, dict[str, Any]] | None:
        found = {t.order_id: await order_status(http, stack, buyer, t.order_id) for t in tracked}
        done = all(found[t.order_id]["status"] == t.statuses[-1] for t in tracked)
        return found if done else None

    orders = await eventually(final_orders, timeout=30, interval=0.2)
    assert isinstance(orders, dict)
    for item in tracked:
        assert [h["status"] for h in orders[item.order_id]["history"]] == item.statuses, item.name
        assert orders[item.order_id]["version"] == len(item.statuses), item.name
    assert orders[too_many.order_id]["reason"]

    # Every outbox drains: nothing stays behind once the broker is back.
    async def outboxes_empty() -> bool:
        return all([await outbox_rows(stack, service) == 0 for service in ("catalog", "orders", "cart")])

    await eventually(outboxes_empty, timeout=20, interval=0.2)
    # The phone comes back online only now, when everything it missed has gone past.
    await devices[1].connect()

    # Stock: reserved exactly once per accepted order, released exactly once per cancelled or expired one.
    held = sum(t.quantity for t in tracked if t.holds_stock)

    async def settled() -> dict[str, Any] | None:
        found = await get_product(http, stack, product_id)
        return found if found["available"] == STOCK - held else None

    final_product = await eventually(settled, timeout=20, interval=0.2)
    assert isinstance(final_product, dict)
    rows = await query(
        stack,
        "catalog",
        "SELECT order_id, quantity, state FROM reservations WHERE product_id = $1 ORDER BY order_id",
        product_id,
    )
    reservations = {r["order_id"]: (r["quantity"], r["state"]) for r in rows}
    for item in tracked:
        if item is too_many:
            assert item.order_id not in reservations, "a rejected order reserves nothing"
        elif item is withdrawn and item.order_id not in reservations:
            pass  # cancelled before the catalog saw it: nothing to reserve or release
        else:
            state = "reserved" if item.holds_stock else "released"
            assert reservations[item.order_id] == (item.quantity, state), item.name
    assert set(reservations) <= {t.order_id for t in tracked}
    reserved = sum(q for q, state in reservations.values() if state == "reserved")
    assert STOCK - reserved == final_product["available"]
    released = sum(1 for _, state in reservations.values() if state == "released")
    # Each release moved the stock once, reservations at most once each (version 1 is the
    # creation; orders reserved together move it together). The counts above show none twice.
    assert 1 + released < final_product["version"] <= 1 + len(reservations) + released
    outcomes = await query(stack, "catalog", "SELECT state FROM order_outcomes WHERE order_id = $1", too_many.order_id)
    assert [r["state"] for r in outcomes] == ["rejected"]

    # Every client got every publication of its order channels: loaded once, then gapless.
    async def followers_caught_up() -> bool:
        return all(f.last[0] == orders[t.order_id]["version"] for t in tracked for f in t.followers)

    await eventually(followers_caught_up, timeout=20, interval=0.1)
    for item in tracked:
        for follower in item.followers:
            check_order_timeline(follower, orders[item.order_id])
    # The phone that was offline resubscribed and recovered from the gateway's history.
    offline = devices[1].timelines
    assert offline, "device-1 follows some orders"
    for timeline in offline.values():
        assert len(timeline.subscribed) == 2, timeline.channel
        again = timeline.subscribed[1]
        assert again.was_recovering and again.recovered, timeline.channel
    assert sum(t.missed(1) for t in offline.values()) > 0, "it had missed publications, and recovered them"

    # The buyer's personal channel: one summary per status change of every order, gapless.
    changes = sum(len(t.statuses) for t in tracked)
    await eventually(lambda: _at(user_line, changes), timeout=20, interval=0.1)
    assert user_line.gapless_to(changes), (user_line.loads, user_line.offsets)
    summaries = sorted((data["order_id"], data["version"]) for _, data in user_line.pubs)
    assert summaries == sorted((t.order_id, v) for t in tracked for v in range(1, len(t.statuses) + 1))

    # Product viewers: the stock channel is conflated and recovers its latest state (cache mode), so
    # viewers may skip intermediate counts, but never go back, and all end on the final one.
    top = final_product["stream"]["offset"]
    assert top == final_product["version"]

    async def viewers_caught_up() -> bool:
        return all(line.last[0] == top for line in stock_lines)

    await eventually(viewers_caught_up, timeout=20, interval=0.1)
    for line in stock_lines:
        seen = [line.loads[0][0], *line.offsets]
        assert seen == sorted(set(seen)), (line.channel, seen)
        assert line.last[1]["available"] == STOCK - held
        assert all(ctx.stream_position.epoch == final_product["stream"]["epoch"] for ctx in line.subscribed)

    # Carts: the cart service consumed through the outage too. The buyer's cart was emptied once by
    # the confirmation of the order placed from it; the guest's line is flagged short against the
    # final stock. Their tabs end on the carts' current versions.
    carts = {
        "buyer": await get_cart(http, stack, buyer_cart["cart_id"], stack.auth(buyer)),
        "guest": await get_cart(http, stack, guest_cart["cart_id"], guest_headers),
    }
    assert carts["buyer"]["items"] == []
    [line] = carts["guest"]["items"]
    assert (line["quantity"], line["available"], line["short"]) == (9, STOCK - held, True)
    emptied = [d for _, d in cart_lines["buyer"].pubs if d["items"] == []]
    assert len(emptied) == 1, "the cart was emptied once, however often the confirmation arrived"

    async def tabs_caught_up() -> bool:
        fresh = {
            "buyer": await get_cart(http, stack, buyer_cart["cart_id"], stack.auth(buyer)),
            "guest": await get_cart(http, stack, guest_cart["cart_id"], guest_headers),
        }
        return all(cart_lines[k].last[0] == fresh[k]["stream"]["offset"] for k in fresh)

    await eventually(tabs_caught_up, timeout=20, interval=0.1)
    for key, line_ in cart_lines.items():
        # Live, a tab gets every version; the cart namespace recovers in cache mode (the latest whole
        # cart), so a tab that had to resubscribe (its connection dropped on a loaded machine) may
        # skip versions, but it never goes back and never sees one twice.
        if len(line_.subscribed) == 1:
            assert line_.gapless_to(line_.last[0]), (key, line_.loads, line_.offsets)
        seen = [line_.loads[0][0], *line_.offsets]
        assert seen == sorted(set(seen)), (key, seen)
        assert [i["short"] for i in line_.last[1]["items"]] == [i["short"] for i in carts[key]["items"]], key


async def open_cart(http: httpx.AsyncClient, stack: Stack, headers: dict[str, str]) -> dict[str, Any]:
    """POST /carts: a guest cart (no headers; it comes with its cart_token) or the customer's open cart."""
    response = await http.post(f"{stack.url('cart')}/carts", headers=headers)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def get_cart(http: httpx.AsyncClient, stack: Stack, cart_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.get(f"{stack.url('cart')}/carts/{cart_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def put_item(
    http: httpx.AsyncClient, stack: Stack, cart_id: str, product_id: int, quantity: int, headers: dict[str, str]
) -> None:
    async def attempt() -> httpx.Response | None:
        url = f"{stack.url('cart')}/carts/{cart_id}/items/{product_id}"
        response = await http.put(url, json={"quantity": quantity}, headers=headers)
        return None if response.status_code == 404 else response  # 404 until the cart learns the product

    response = await eventually(attempt)
    assert isinstance(response, httpx.Response) and response.status_code == 200, response


async def cart_grant(http: httpx.AsyncClient, stack: Stack, cart_id: str, headers: dict[str, str]) -> str:
    response = await http.post(f"{stack.url('cart')}/carts/{cart_id}/subscription-token", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def cart_loader(http: httpx.AsyncClient, stack: Stack, cart_id: str, headers: dict[str, str]) -> Loader:
    async def load() -> tuple[int, str, Any]:
        cart = await get_cart(http, stack, cart_id, headers)
        return cart["stream"]["offset"], cart["stream"]["epoch"], cart

    return load


async def _at(timeline: Timeline, offset: int) -> bool:
    return timeline.last[0] >= offset
