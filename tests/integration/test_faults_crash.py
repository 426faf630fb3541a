"""Crashes: SIGKILL a gateway under its subscribed clients, SIGKILL a service in the middle of sagas.

- A gateway pod dies with no drain while publications flow: its clients reconnect (to the same
  pod once it is back, or through a load balancer to another one) and recover every publication
  they missed, with the offsets and epoch they would have seen live.
- The catalog, or the orders service, dies while orders are in flight: once it is back, every
  outbox row is published, every consumer resumes, every order is decided correctly exactly once,
  and the clients following the orders see their final statuses.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest

from .clients import (
    LiveClient,
    Timeline,
    cancel,
    create_product,
    followers_end_on,
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
from .faults import down, make_whole, outbox_rows, query, unready
from .gateway_fleet import Fleet, LoadBalancer

TEST_LIMIT_SECONDS = 55.0


async def close_all(clients: list[LiveClient]) -> None:
    for client in clients:
        try:
            await asyncio.wait_for(client.close(), 5)
        except Exception:  # noqa: BLE001 - closing is best effort; the stack matters more
            pass


async def leave_whole(stack: Stack, clients: list[LiveClient]) -> None:
    """A crash test's ``finally``: clients closed, every process running and ready."""
    await close_all(clients)
    repaired = await make_whole(stack)
    assert not down(stack)
    assert not repaired, f"processes that did not come back by themselves: {repaired}"


async def served_by(stack: Stack, client_id: str) -> list[str]:
    """The gateways whose structured ``connect`` log line names ``client_id`` (waits for the line)."""
    names = [stack.gateway(i) for i in range(len(stack.config.gateway_ports))]

    async def find() -> list[str]:
        return [n for n in names if any(client_id in line and '"connect"' in line for line in stack.logs(n))]

    found = await eventually(find, timeout=5)
    assert isinstance(found, list)
    return found


# ---- a load balancer in front of the stack's gateways (what a Kubernetes Service does) ---------


@dataclass
class _Pod:
    name: str
    port: int


class _StackGateways:
    """What ``gateway_fleet.LoadBalancer`` asks of a fleet: its pods and their readiness."""

    def __init__(self, stack: Stack) -> None:
        self.pods = {stack.gateway(i): _Pod(stack.gateway(i), p) for i, p in enumerate(stack.config.gateway_ports)}
        self.http = httpx.AsyncClient(timeout=1.0)

    async def readyz(self, pod: _Pod) -> int:
        try:
            return (await self.http.get(f"http://127.0.0.1:{pod.port}/readyz")).status_code
        except httpx.HTTPError:
            return 0


# ---- 1. a gateway dies under its clients ---------------------------------------------------------


async def test_gateway_crash_clients_recover_every_missed_publication(
    http: httpx.AsyncClient, fault_stack: Stack
) -> None:
    stack = fault_stack
    clients: list[LiveClient] = []
    gateways = _StackGateways(stack)
    lb = LoadBalancer(cast(Fleet, gateways))
    try:
        async with asyncio.timeout(TEST_LIMIT_SECONDS):
            await _gateway_crash(http, stack, clients, lb)
    finally:
        await lb.close()
        await gateways.http.aclose()
        await leave_whole(stack, clients)


async def _gateway_crash(http: httpx.AsyncClient, stack: Stack, clients: list[LiveClient], lb: LoadBalancer) -> None:
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    victim = stack.gateway(0)
    product = await create_product(http, stack, stock=40)
    product_id = product["id"]
    await lb.start()

    # On the victim: a product viewer and the buyer's phone. Through the balancer (pinned to the
    # victim for now): the buyer's laptop. On another gateway: a tablet that sees everything live.
    viewer = LiveClient(stack.gateway_urls[0], name="viewer")
    phone = LiveClient(stack.gateway_urls[0], stack.token(buyer), name="phone")
    laptop = LiveClient(lb.ws_url, stack.token(buyer), name="laptop")
    tablet = LiveClient(stack.gateway_urls[1], stack.token(buyer), name="tablet")
    clients += [viewer, phone, laptop, tablet]
    lb.pool = {victim}
    for client in clients:
        await client.connect()
    lb.pool = None
    assert await served_by(stack, laptop.client_ids[0]) == [victim]
    stock_line = await viewer.watch(f"stock:{product_id}", product_loader(http, stack, product_id))

    async def own_orders() -> tuple[int, str, Any]:
        response = await http.get(f"{stack.url('orders')}/orders", headers=stack.auth(buyer))
        assert response.status_code == 200, response.text
        page = response.json()
        return page["stream"]["offset"], page["stream"]["epoch"], page

    user_lines = [await c.watch(f"user#{buyer}", own_orders) for c in (phone, laptop, tablet)]

    shipped = await place_order(http, stack, buyer, [{"product_id": product_id, "quantity": 2}])
    refunded = await place_order(http, stack, buyer, [{"product_id": product_id, "quantity": 1}])
    followed: dict[int, list[Timeline]] = {o["id"]: [] for o in (shipped, refunded)}
    for order_id, lines in followed.items():
        grant = await order_grant(http, stack, buyer, order_id)
        for client in (phone, laptop, tablet):
            load = order_loader(http, stack, buyer, order_id)
            lines.append(await client.watch(f"order:{order_id}", load, token=grant))
    for order_id in followed:
        await wait_for_status(http, stack, buyer, order_id, "confirmed", timeout=20)
        await pay(http, stack, buyer, order_id)

    # Publications keep flowing the whole time: other buyers take and give back stock.
    flowing = asyncio.Event()
    flowing.set()
    traffic: list[int] = []

    async def other_buyers() -> None:
        while flowing.is_set():
            placed = await place_order(http, stack, "passer-by", [{"product_id": product_id, "quantity": 1}])
            traffic.append(placed["id"])
            await asyncio.sleep(0.2)
            await cancel(http, stack, placed["id"], stack.auth("passer-by"))
            await asyncio.sleep(0.2)

    background = asyncio.create_task(other_buyers())
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.kill, victim)  # SIGKILL: no drain, no goodbye
        # While it is down, the orders move on: its clients must get these from another pod's history.
        await staff_move(http, stack, shipped["id"], "packed")
        await staff_move(http, stack, shipped["id"], "shipped")
        await cancel(http, stack, refunded["id"], stack.auth(buyer))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.restart, victim)
        await staff_move(http, stack, shipped["id"], "delivered")
        await asyncio.sleep(1.0)
    finally:
        flowing.clear()
        await asyncio.wait_for(background, 20)

    final = {order_id: await order_status(http, stack, buyer, order_id) for order_id in followed}
    assert [h["status"] for h in final[shipped["id"]]["history"]] == [
        "pending",
        "confirmed",
        "paid",
        "packed",
        "shipped",
        "delivered",
    ]
    assert [h["status"] for h in final[refunded["id"]]["history"]] == ["pending", "confirmed", "paid", "cancelled"]

    await followers_end_on(followed, final)

    # The victim's clients lost their connection and got back in: the phone on the restarted pod,
    # the laptop through the balancer on whichever pod was ready (another one, while the victim was down).
    for client in (viewer, phone, laptop):
        assert client.disconnects and len(client.client_ids) >= 2, client.name
    assert await served_by(stack, phone.client_ids[-1]) == [victim]
    assert victim not in await served_by(stack, laptop.client_ids[1]), "the balancer sent the laptop to a live pod"
    assert len(tablet.client_ids) == 1 and not tablet.disconnects, "the tablet's pod never went away"
    for client in (phone, laptop):
        for timeline in client.timelines.values():
            assert len(timeline.subscribed) >= 2, (client.name, timeline.channel)
            first = timeline.subscribed[0].stream_position
            assert first is not None
            for again in timeline.subscribed[1:]:
                assert again.was_recovering and again.recovered, (client.name, timeline.channel)
                assert again.stream_position is not None
                # "" is the epoch of a channel nobody had published on yet (the buyer's user# at first)
                assert first.epoch in ("", again.stream_position.epoch), (first, again.stream_position)
    away = [t for c in (phone, laptop) for t in c.timelines.values()]
    missed = sum(t.missed(i) for t in away for i in range(1, len(t.subscribed)))
    assert missed > 0, "publications were made while the clients were away, and recovered"

    # The buyer's personal channel: every summary exactly once on all three devices.
    changes = sum(final[order_id]["version"] for order_id in followed)
    await eventually(lambda: _all_at(user_lines, changes), timeout=20, interval=0.1)
    for line in user_lines:
        assert line.gapless_to(changes), (line.loads, line.offsets)

    # Stock (cache recovery, conflated): once the catalog has given back every passer-by's unit, the
    # viewer ends on the product's final state (the shipped order holds 2), never having gone back.
    async def released() -> bool:
        sql = "SELECT count(*) AS n FROM order_outcomes WHERE order_id = ANY($1) AND state = 'released'"
        rows = await query(stack, "catalog", sql, traffic)
        return rows[0]["n"] == len(traffic)

    await eventually(released, timeout=20, interval=0.2)
    settled = await get_product(http, stack, product_id)
    assert settled["available"] == 40 - 2
    await eventually(lambda: _all_at([stock_line], settled["version"]), timeout=20, interval=0.1)
    seen = [stock_line.loads[0][0], *stock_line.offsets]
    assert seen == sorted(set(seen))
    assert stock_line.last == (settled["version"], stock_line.last[1])
    assert stock_line.last[1]["available"] == settled["available"]
    assert len(stock_line.loads) == 1 and all(ctx.recovered for ctx in stock_line.subscribed[1:])


async def _all_at(lines: list[Timeline], offset: int) -> bool:
    return all(line.last[0] >= offset for line in lines)


# ---- 2. a service dies in the middle of sagas ------------------------------------------------------

STOCK = 10
SMALL, BIG = 1, STOCK + 1  # six small orders all fit; a big one never does


@pytest.mark.parametrize("victim", ["catalog", "orders"])
async def test_service_crash_mid_saga_decides_every_order_once(
    http: httpx.AsyncClient, fault_stack: Stack, victim: str
) -> None:
    stack = fault_stack
    clients: list[LiveClient] = []
    try:
        async with asyncio.timeout(TEST_LIMIT_SECONDS):
            await _service_crash(http, stack, clients, victim)
    finally:
        await leave_whole(stack, clients)


async def _service_crash(http: httpx.AsyncClient, stack: Stack, clients: list[LiveClient], victim: str) -> None:
    buyer = f"buyer-{uuid.uuid4().hex[:8]}"
    product = await create_product(http, stack, stock=STOCK)
    product_id = product["id"]
    devices = [LiveClient(url, stack.token(buyer), name=f"device-{i}") for i, url in enumerate(stack.gateway_urls)]
    viewer = LiveClient(stack.gateway_urls[2], name="viewer")
    clients += [*devices, viewer]
    for client in clients:
        await client.connect()
    stock_line = await viewer.watch(f"stock:{product_id}", product_loader(http, stack, product_id))

    sizes = [SMALL, SMALL, BIG, SMALL, SMALL, BIG, SMALL, SMALL]
    lines: dict[int, list[Timeline]] = {}

    async def follow(order_id: int) -> None:
        grant = await order_grant(http, stack, buyer, order_id)
        i = len(lines)
        lines[order_id] = [
            await device.watch(f"order:{order_id}", order_loader(http, stack, buyer, order_id), token=grant)
            for device in (devices[i % 3], devices[(i + 1) % 3])
        ]

    async def place(quantity: int) -> int:
        placed = await place_order(http, stack, buyer, [{"product_id": product_id, "quantity": quantity}])
        return int(placed["id"])

    # Two orders followed from the start, then a burst; the victim dies with the burst in flight.
    ids = [await place(q) for q in sizes[:2]]
    for order_id in ids:
        await follow(order_id)
    if victim == "catalog":
        burst = asyncio.gather(*(place(q) for q in sizes[2:5]))
        await wait_for_status(http, stack, buyer, ids[0], "confirmed", timeout=20)
        await asyncio.to_thread(stack.kill, victim)
        ids += await burst
        ids += [await place(q) for q in sizes[5:]]  # placed while the catalog is down: the saga waits
        in_flight = [oid for oid in ids if (await order_status(http, stack, buyer, oid))["status"] == "pending"]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.restart, victim)
    else:
        ids += await asyncio.gather(*(place(q) for q in sizes[2:]))
        await asyncio.to_thread(stack.kill, victim)  # the burst's OrderPlaced and StockReserved are in flight
        rows = await query(stack, "orders", "SELECT id FROM orders WHERE id = ANY($1) AND status = 'pending'", ids)
        in_flight = [r["id"] for r in rows]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.restart, victim)
    assert in_flight, f"some orders were undecided when the {victim} died"
    for order_id in ids[2:]:
        await follow(order_id)

    # Every order decided exactly once: the small ones reserved (then expired: nobody pays within
    # the 4 s window), the big ones rejected. Expired orders give their units back.
    expected = {
        oid: ["pending", "confirmed", "expired"] if q == SMALL else ["pending", "rejected"]
        for oid, q in zip(ids, sizes, strict=True)
    }

    async def decided() -> dict[int, dict[str, Any]] | None:
        found = {oid: await order_status(http, stack, buyer, oid) for oid in ids}
        return found if all(found[oid]["status"] == statuses[-1] for oid, statuses in expected.items()) else None

    final = await eventually(decided, timeout=30, interval=0.2)
    assert isinstance(final, dict)
    for oid, statuses in expected.items():
        assert [h["status"] for h in final[oid]["history"]] == statuses, (oid, final[oid]["history"])

    # Every outbox row published, every consumer back.
    async def drained() -> bool:
        return all([await outbox_rows(stack, svc) == 0 for svc in ("catalog", "orders", "cart")])

    await eventually(drained, timeout=20, interval=0.2)
    assert not await unready(stack)

    # The catalog reserved and released each small order exactly once, and never a big one.
    async def restocked() -> dict[str, Any] | None:
        found = await get_product(http, stack, product_id)
        return found if found["available"] == STOCK else None

    restored = await eventually(restocked, timeout=20, interval=0.2)
    assert isinstance(restored, dict)
    product = restored
    rows = await query(
        stack, "catalog", "SELECT order_id, quantity, state FROM reservations WHERE product_id = $1", product_id
    )
    small = sorted(oid for oid, q in zip(ids, sizes, strict=True) if q == SMALL)
    assert sorted((r["order_id"], r["quantity"], r["state"]) for r in rows) == [(oid, 1, "released") for oid in small]
    # One stock move per release, at most one per reservation (orders reserved together move it once).
    assert 1 + len(small) < product["version"] <= 1 + 2 * len(small)

    # The clients following the orders saw every status, ending with the final one.
    await followers_end_on(lines, final)
    for oid, ls in lines.items():
        for line in ls:
            assert line.last[1]["status"] == expected[oid][-1]

    async def stock_caught_up() -> bool:
        return stock_line.last[0] == product["version"]

    await eventually(stock_caught_up, timeout=20, interval=0.1)
    assert stock_line.last[1]["available"] == STOCK
