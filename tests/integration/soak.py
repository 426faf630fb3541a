"""The soak behind test_soak.py: seeded mixed traffic with faults, SDK watchers, and the audit.

- ``Watcher``: one official centrifuge-python client on one gateway. Each channel it subscribes to
  loads its state over REST in the SDK's ``get_state`` flow (also after error 112) and then
  applies publications by offset; a tab also applies its own cart writes' responses (the gateway
  does not echo them back to it). ``views`` is the client's last known state of every channel.
- ``Soak``: products, customers with carts and two tabs each, staff, the traffic and the faults.
- ``audit``: after the system settles, what every client holds against the services' REST
  state, and the stock ledger against the catalog's database.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    ConnectingContext,
    PublicationContext,
    StreamPosition,
    SubscribedContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    SubscriptionState,
    UnsubscribedContext,
)

from .conftest import Stack
from .faults import broker_outage, crash, query

T = TypeVar("T")
# Each tab subscribes to every order of its customer: stay below the gateway's channels per connection (128).
MAX_ORDERS_PER_CUSTOMER = 100
HOLDS_STOCK = frozenset({"confirmed", "paid", "packed", "shipped", "delivered"})
UNSETTLED = ("pending", "confirmed")  # statuses that still change on their own (saga, payment window)
# A cart line's ``available`` is as of the cart's version: stock changes that flip no ``short`` flag
# do not make a new version (services/cart/README.md, "Channels"), while GET prices with the
# availability known at the read. So clients are compared on everything else, ``short`` included,
# and the ledger checks GET's availability against the catalog (see ``Soak.ledger``).
CART_LINE_KEYS = ("product_id", "name", "unit_price_cents", "quantity", "line_total_cents", "short")


def soak_seconds(default: float = 30.0) -> float:
    return float(os.environ.get("FLASHLINE_SOAK_SECONDS") or default)


def soak_seed() -> int:
    return int(os.environ.get("FLASHLINE_SOAK_SEED") or 20240611)


def namespace(channel: str) -> str:
    return channel.split(":", 1)[0]


def project(channel: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the audit compares of a channel's state (a publication's data or a REST body)."""
    ns = namespace(channel)
    if ns == "stock":
        return {k: data.get(k) for k in ("available", "status", "version")}
    if ns == "order":
        return {k: data.get(k) for k in ("status", "version", "reason")}
    if ns == "cart":
        return {
            "version": data.get("version"),
            "items": [{k: line.get(k) for k in CART_LINE_KEYS} for line in data.get("items", [])],
            "totals": data.get("totals"),
        }
    raise AssertionError(f"no projection for {channel}")


# --- REST ----------------------------------------------------------------------------------------


class Rest:
    """The services' REST APIs as the soak uses them; transport errors are retried where idempotent."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http

    async def request(self, method: str, url: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        for attempt in range(8):
            try:
                return await self.http.request(method, url, **kwargs)
            except httpx.TransportError:
                if not retry or attempt == 7:
                    raise
                await asyncio.sleep(0.25 * (attempt + 1))
        raise AssertionError("unreachable")

    async def state(self, channel: str, user: str | None) -> tuple[dict[str, Any], int, str]:
        """A channel's state over REST: (body, stream offset, stream epoch)."""
        ns, _, key = channel.partition(":")
        if ns == "stock":
            url, headers = f"{self.stack.url('catalog')}/products/{key}", {}
        elif ns == "order":
            url, headers = f"{self.stack.url('orders')}/orders/{key}", self.stack.auth(user or "")
        elif ns == "cart":
            url, headers = f"{self.stack.url('cart')}/carts/{key}", self.stack.auth(user or "")
        else:
            raise AssertionError(channel)
        response = await self.request("GET", url, headers=headers)
        assert response.status_code == 200, (channel, response.status_code, response.text)
        body = response.json()
        return body, int(body["stream"]["offset"]), str(body["stream"]["epoch"])

    async def grant(self, channel: str, user: str) -> str:
        ns, _, key = channel.partition(":")
        service, path = {"order": ("orders", "orders"), "cart": ("cart", "carts")}[ns]
        url = f"{self.stack.url(service)}/{path}/{key}/subscription-token"
        response = await self.request("POST", url, headers=self.stack.auth(user))
        assert response.status_code == 200, (channel, response.status_code, response.text)
        return str(response.json()["token"])


# --- watchers ------------------------------------------------------------------------------------


@dataclass
class View:
    """One client's knowledge of one channel."""

    offset: int = -1
    epoch: str = ""
    state: dict[str, Any] | None = None
    source: str = ""  # "load" (get_state), "publication", "response" (the tab's own write)
    loads: int = 0
    publications: int = 0
    subscribed: int = 0
    recovered: int = 0  # resubscribes that recovered (was_recovering and recovered)


class Watcher:
    """A centrifuge-python client on one gateway; ``views`` is its last state of each channel."""

    def __init__(self, name: str, url: str, rest: Rest, *, user: str | None = None) -> None:
        self.name, self.url, self.rest, self.user = name, url, rest, user
        self.views: dict[str, View] = {}
        self.anomalies: list[str] = []
        self.lags: list[tuple[float, float]] = []  # order publications: (when, seconds from the change to here)
        self.reloads: list[str] = []  # get_state again: the gateway answered 112 (position gone)
        self.errors: Counter[str] = Counter()
        self.connects = 0
        self.client_id = ""
        watcher = self

        class Events(ClientEventHandler):
            async def on_connected(self, ctx: ConnectedContext) -> None:
                watcher.client_id = ctx.client
                watcher.connects += 1

            async def on_connecting(self, ctx: ConnectingContext) -> None:
                if watcher.connects:
                    watcher.errors[f"reconnect {ctx.code}"] += 1

        token = rest.stack.token(user) if user else ""
        self.client = Client(url, token=token, events=Events(), max_reconnect_delay=2.0, timeout=5.0)

    async def start(self) -> None:
        await self.client.connect()

    async def close(self) -> None:
        await self.client.disconnect()

    async def subscribe(self, channel: str) -> None:
        """Start subscribing (the SDK retries in the background); the view fills through get_state."""
        view = self.views.setdefault(channel, View())
        watcher = self

        class Events(SubscriptionEventHandler):
            async def on_subscribed(self, ctx: SubscribedContext) -> None:
                view.subscribed += 1
                if ctx.was_recovering and ctx.recovered and view.subscribed > 1:
                    view.recovered += 1

            async def on_publication(self, ctx: PublicationContext) -> None:
                watcher.publication(channel, view, ctx.pub.offset, ctx.pub.data)

            async def on_error(self, ctx: SubscriptionErrorContext) -> None:
                watcher.errors[f"{namespace(channel)} sub error {ctx.code}: {ctx.error}"] += 1

            async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
                if ctx.code != 0:
                    watcher.anomalies.append(f"{watcher.name} {channel}: unsubscribed {ctx.code} {ctx.reason}")

        async def get_state(_: str) -> StreamPosition:
            body, offset, epoch = await self.rest.state(channel, self.user)
            if view.loads:
                self.reloads.append(f"{channel} (held offset {view.offset}, loaded {offset})")
            view.loads += 1
            if view.state is None or epoch != view.epoch or offset > view.offset:
                view.offset, view.epoch, view.state, view.source = offset, epoch, project(channel, body), "load"
            return StreamPosition(offset=offset, epoch=epoch)

        get_token: Callable[[str], Awaitable[str]] | None = None
        if namespace(channel) != "stock":

            async def get_token(_: str) -> str:
                return await self.rest.grant(channel, self.user or "")

        sub = self.client.new_subscription(channel, events=Events(), get_state=get_state, get_token=get_token)
        await sub.subscribe()

    def publication(self, channel: str, view: View, offset: int, data: dict[str, Any]) -> None:
        view.publications += 1
        if namespace(channel) == "order" and data.get("updated_at"):
            changed = datetime.fromisoformat(str(data["updated_at"]).replace("Z", "+00:00"))
            self.lags.append((time.monotonic(), (datetime.now(UTC) - changed).total_seconds()))
        if offset <= view.offset:
            if view.source == "publication":
                self.anomalies.append(f"{self.name} {channel}: offset {offset} after {view.offset} (out of order)")
            return  # a load or the tab's own write already covers it
        if namespace(channel) == "order" and view.offset >= 0 and offset != view.offset + 1:
            # stream recovery: every publication of an order, in order, none missing
            self.anomalies.append(f"{self.name} {channel}: offset {offset} after {view.offset} (gap)")
        view.offset, view.state, view.source = offset, project(channel, data), "publication"

    def own_write(self, channel: str, body: dict[str, Any]) -> None:
        """A tab applies the cart its own write returned (the gateway suppresses that echo)."""
        view = self.views.get(channel)
        offset = int(body["stream"]["offset"])
        if view is not None and offset > view.offset:
            view.offset, view.state, view.source = offset, project(channel, body), "response"

    def unsubscribed_channels(self) -> list[str]:
        subs = self.client.subscriptions()
        return [c for c in self.views if c not in subs or subs[c].state != SubscriptionState.SUBSCRIBED]

    @property
    def connected(self) -> bool:
        return self.client.state == ClientState.CONNECTED


# --- the soak ------------------------------------------------------------------------------------


@dataclass
class Customer:
    user: str
    cart_id: str
    tabs: list[Watcher]  # tabs[0] makes the cart edits (X-Client-Id), tabs[1] only watches
    rng: random.Random
    orders: int = 0


@dataclass
class PlacedOrder:
    id: int
    user: str
    lines: list[dict[str, int]]
    from_cart: bool
    intent: str  # pay, cancel, expire, cancel-pending
    placements: int = 1  # POSTs with its Idempotency-Key that returned it


@dataclass
class Soak:
    stack: Stack
    http: httpx.AsyncClient
    seconds: float
    seed: int = field(default_factory=soak_seed)
    products: dict[int, int] = field(default_factory=dict)  # id -> initial stock
    restocked: Counter[int] = field(default_factory=Counter)
    customers: list[Customer] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)
    orders: dict[int, PlacedOrder] = field(default_factory=dict)
    paid: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    counts: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    dead_before: dict[str, int] = field(default_factory=dict)  # dead-letter queue depths before the soak
    settled_in: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rest = Rest(self.stack, self.http)
        self.run = uuid.uuid4().hex[:6]
        self.rng = random.Random(self.seed)

    async def timed(self, phase: str, step: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            return await step
        finally:
            self.phases[phase] = time.monotonic() - started

    # setup ------------------------------------------------------------------------------------

    async def setup(self, *, products: int = 4, customers: int = 4) -> None:
        catalog = self.stack.url("catalog")
        for _ in range(products):
            stock = self.rng.randint(10, 20)
            sku = f"SOAK-{uuid.uuid4().hex[:10]}"
            body = {"sku": sku, "name": f"Soak {sku[-4:]}", "price_cents": 1000, "currency": "EUR", "stock": stock}
            response = await self.rest.request(
                "POST", f"{catalog}/products", json=body, headers=self.stack.auth("carol", "staff"), retry=False
            )
            assert response.status_code == 201, response.text
            self.products[response.json()["id"]] = stock
        gateways = self.stack.gateway_urls
        for index, url in enumerate(gateways):  # product pages: anonymous viewers on every gateway
            viewer = Watcher(f"viewer@gw{index}", url, self.rest)
            self.watchers.append(viewer)
        for index in range(customers):
            user = f"soak{self.run}c{index}"
            created = await self.rest.request("POST", f"{self.stack.url('cart')}/carts", headers=self.stack.auth(user))
            assert created.status_code in (200, 201), created.text
            tabs = [
                Watcher(
                    f"{user}/tab{t}@gw{(index + t) % len(gateways)}",
                    gateways[(index + t) % len(gateways)],
                    self.rest,
                    user=user,
                )
                for t in range(2)
            ]
            self.watchers += tabs
            self.customers.append(Customer(user, created.json()["cart_id"], tabs, random.Random(self.seed + index + 1)))
        await asyncio.gather(*(w.start() for w in self.watchers))
        for viewer in self.watchers[: len(gateways)]:
            for product_id in self.products:
                await viewer.subscribe(f"stock:{product_id}")
        for customer in self.customers:
            for tab in customer.tabs:
                await tab.subscribe(f"cart:{customer.cart_id}")
        await self._wait_known_products()
        self.dead_before = {q: n for q, n in (await asyncio.to_thread(self.queue_depths)).items() if q.endswith(".dlq")}

    async def _wait_known_products(self, timeout: float = 20.0) -> None:
        """The orders and cart services learn products from the catalog's events: wait for both."""
        first = self.customers[0]
        deadline = time.monotonic() + timeout
        for product_id in self.products:
            while True:
                response = await self._put_item(first, product_id, 0)
                if response.status_code == 200:
                    break
                assert response.status_code == 404 and time.monotonic() < deadline, response.text
                await asyncio.sleep(0.2)
        lines = [{"product_id": p, "quantity": 1} for p in self.products]
        while True:
            order = await self._post_order(first, lines, None, uuid.uuid4().hex)
            if order is not None:
                await self._track(order, first, lines, from_cart=False, intent="pay")
                break
            assert time.monotonic() < deadline, "the orders service never learnt the soak's products"
            await asyncio.sleep(0.2)

    # traffic ----------------------------------------------------------------------------------

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def traffic(self, *, outage_seconds: float = 4.0, gateway_down_seconds: float = 2.0) -> None:
        """Customers, staff and the faults until the time is up; then every task it started ends."""
        self.deadline = time.monotonic() + self.seconds
        self.started = time.monotonic()
        for customer in self.customers:
            self.spawn(self._customer(customer))
        self.spawn(self._staff())
        self.spawn(self._faults(outage_seconds, gateway_down_seconds))
        try:
            while self.tasks:  # the first failure ends the traffic
                await asyncio.gather(*list(self.tasks))
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def _faults(self, outage_seconds: float, gateway_down_seconds: float) -> None:
        await asyncio.sleep(self.seconds * 0.25)
        self.faults.append(f"broker outage at {time.monotonic() - self.started:.1f}s for {outage_seconds:.0f}s")
        async with broker_outage(self.stack):
            await asyncio.sleep(outage_seconds)
        await asyncio.sleep(max(0.0, self.started + self.seconds * 0.55 - time.monotonic()))
        victim = self.stack.gateway(self.rng.randrange(len(self.stack.gateway_urls)))
        self.faults.append(
            f"SIGKILL {victim} at {time.monotonic() - self.started:.1f}s, down {gateway_down_seconds:.0f}s"
        )
        await crash(self.stack, victim, down_for=gateway_down_seconds)

    async def _customer(self, customer: Customer) -> None:
        rng = customer.rng
        while self.running():
            await asyncio.sleep(rng.uniform(0.25, 0.9))
            roll = rng.random()
            if roll < 0.5 or customer.orders >= MAX_ORDERS_PER_CUSTOMER:
                await self._edit_cart(customer)
            elif roll < 0.7:
                await self._order_from_cart(customer)
            else:
                product_ids = rng.sample(sorted(self.products), k=rng.choice((1, 1, 2)))
                await self._order(customer, [{"product_id": p, "quantity": rng.randint(1, 3)} for p in product_ids])

    async def _put_item(
        self, customer: Customer, product_id: int, quantity: int, *, if_match: int | None = None
    ) -> httpx.Response:
        tab = customer.tabs[0]
        headers = {**self.stack.auth(customer.user), "X-Client-Id": tab.client_id}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        url = f"{self.stack.url('cart')}/carts/{customer.cart_id}/items/{product_id}"
        response = await self.rest.request("PUT", url, json={"quantity": quantity}, headers=headers)
        if response.status_code == 200:
            tab.own_write(f"cart:{customer.cart_id}", response.json())
        elif response.status_code == 412:  # someone else changed it first: the tab shows the cart it is sent
            tab.own_write(f"cart:{customer.cart_id}", {**response.json()["cart"]})
        return response

    async def _edit_cart(self, customer: Customer) -> None:
        rng = customer.rng
        view = customer.tabs[0].views[f"cart:{customer.cart_id}"]
        if_match = view.offset if rng.random() < 0.25 and view.state is not None else None
        response = await self._put_item(
            customer, rng.choice(sorted(self.products)), rng.randint(0, 3), if_match=if_match
        )
        assert response.status_code in (200, 412), response.text
        self.counts[f"cart edit {response.status_code}"] += 1

    async def _order_from_cart(self, customer: Customer) -> None:
        body, _, _ = await self.rest.state(f"cart:{customer.cart_id}", customer.user)
        lines = [{"product_id": i["product_id"], "quantity": i["quantity"]} for i in body["items"]]
        if lines:
            await self._order(customer, lines, cart_id=customer.cart_id)
        else:
            await self._edit_cart(customer)

    async def _post_order(
        self, customer: Customer, lines: list[dict[str, int]], cart_id: str | None, key: str
    ) -> dict[str, Any] | None:
        body: dict[str, Any] = {"items": lines} | ({"cart_id": cart_id} if cart_id else {})
        headers = {**self.stack.auth(customer.user), "Idempotency-Key": key}
        response = await self.rest.request("POST", f"{self.stack.url('orders')}/orders", json=body, headers=headers)
        if response.status_code == 422 and response.json().get("code") == "unknown_products":
            return None
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def _order(self, customer: Customer, lines: list[dict[str, int]], *, cart_id: str | None = None) -> None:
        rng = customer.rng
        key = uuid.uuid4().hex
        order = await self._post_order(customer, lines, cart_id, key)
        assert order is not None, "unknown products after the warm-up"
        intent = rng.choices(("pay", "cancel", "expire", "cancel-pending"), weights=(55, 18, 20, 7))[0]
        placed = await self._track(order, customer, lines, from_cart=cart_id is not None, intent=intent)
        if rng.random() < 0.2:  # the client did not see the 202 and retries with the same key
            again = await self._post_order(customer, lines, cart_id, key)
            assert again is not None and again["id"] == order["id"], (order, again)
            placed.placements += 1
        self.spawn(self._lifecycle(customer, placed))

    async def _track(
        self, order: dict[str, Any], customer: Customer, lines: list[dict[str, int]], *, from_cart: bool, intent: str
    ) -> PlacedOrder:
        placed = PlacedOrder(order["id"], customer.user, lines, from_cart, intent)
        self.orders[placed.id] = placed
        customer.orders += 1
        self.counts["orders placed"] += 1
        for tab in customer.tabs:
            await tab.subscribe(f"order:{placed.id}")
        return placed

    async def _lifecycle(self, customer: Customer, order: PlacedOrder) -> None:
        rng = customer.rng
        orders = self.stack.url("orders")
        auth = self.stack.auth(customer.user)
        if order.intent == "cancel-pending":
            await self._cancel(order, auth, expected=(200, 409))
            return
        status = "pending"
        while status == "pending" and self.running():
            await asyncio.sleep(0.3)
            body, _, _ = await self.rest.state(f"order:{order.id}", customer.user)
            status = body["status"]
        if status != "confirmed" or not self.running():
            return
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        if order.intent == "pay" and self.running():
            response = await self.rest.request("POST", f"{orders}/orders/{order.id}/pay", headers=auth)
            assert response.status_code in (200, 409), response.text  # 409: the window closed first
            self.counts[f"pay {response.status_code}"] += 1
            if response.status_code == 200:
                self.paid.put_nowait(order.id)
        elif order.intent == "cancel" and self.running():
            await self._cancel(order, auth, expected=(200, 409))  # 409: expired first

    async def _cancel(self, order: PlacedOrder, auth: dict[str, str], *, expected: tuple[int, ...]) -> None:
        url = f"{self.stack.url('orders')}/orders/{order.id}/cancel"
        response = await self.rest.request("POST", url, headers=auth)
        assert response.status_code in expected, response.text
        self.counts[f"cancel {response.status_code}"] += 1

    async def _staff(self) -> None:
        rng = random.Random(self.seed - 1)
        staff = self.stack.auth("carol", "staff")
        catalog, orders = self.stack.url("catalog"), self.stack.url("orders")
        while self.running():
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            if rng.random() < 0.3:
                product_id = rng.choice(sorted(self.products))
                quantity = rng.randint(1, 4)
                response = await self.rest.request(
                    "POST",
                    f"{catalog}/products/{product_id}/restock",
                    json={"quantity": quantity},
                    headers=staff,
                    retry=False,
                )
                assert response.status_code == 200, response.text
                self.restocked[product_id] += quantity
                self.counts["restocks"] += 1
            while not self.paid.empty():
                order_id = self.paid.get_nowait()
                self.spawn(self._warehouse(order_id, random.Random(order_id), staff, orders))

    async def _warehouse(self, order_id: int, rng: random.Random, staff: dict[str, str], orders: str) -> None:
        for step in ("packed", "shipped", "delivered"):
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            if not self.running():
                return
            if step != "delivered" and rng.random() < 0.08:  # the warehouse finds the parcel damaged
                response = await self.rest.request(
                    "POST",
                    f"{orders}/orders/{order_id}/cancel",
                    json={"reason": "damaged in the warehouse"},
                    headers=staff,
                )
                assert response.status_code == 200, response.text
                self.counts["staff cancel"] += 1
                return
            response = await self.rest.request(
                "POST", f"{orders}/orders/{order_id}/status", json={"status": step}, headers=staff
            )
            assert response.status_code == 200, response.text
            self.counts[f"advance {step}"] += 1

    # settling and the audit ------------------------------------------------------------------

    async def settle(self, timeout: float = 45.0) -> float:
        """Wait until nothing is in flight: no pending/confirmed order, outboxes and queues empty."""
        started = time.monotonic()
        deadline = started + timeout
        quiet = 0
        last: object = None
        while quiet < 2:
            assert time.monotonic() < deadline, f"the system did not settle within {timeout:.0f}s: {last}"
            await asyncio.sleep(0.5)
            unsettled = await self.fetchval(
                "orders",
                "SELECT count(*) FROM orders WHERE id = any($1::bigint[]) AND status = any($2::text[])",
                list(self.orders),
                list(UNSETTLED),
            )
            outboxes = {
                svc: await self.fetchval(svc, "SELECT count(*) FROM outbox") for svc in ("catalog", "orders", "cart")
            }
            queued = await asyncio.to_thread(self.queue_depths) if not unsettled and not any(outboxes.values()) else {}
            busy = {q: n for q, n in queued.items() if n and not q.endswith(".dlq")}
            last = {"unsettled orders": unsettled, "outboxes": outboxes, "queues": busy or queued}
            quiet = quiet + 1 if not unsettled and not any(outboxes.values()) and queued and not busy else 0
        self.settled_in = time.monotonic() - started
        return self.settled_in

    async def fetch(self, service: str, sql: str, *args: Any) -> list[Any]:
        return await query(self.stack, service, sql, *args)

    async def fetchval(self, service: str, sql: str, *args: Any) -> Any:
        return (await self.fetch(service, sql, *args))[0][0]

    def queue_depths(self) -> dict[str, int]:
        """Messages (ready + unacknowledged) in the vhost's event queues and dead-letter queues."""
        out = subprocess.run(
            ["rabbitmqctl", "--quiet", "list_queues", "-p", self.stack.config.vhost, "name", "messages"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        depths = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and ".events" in parts[0]:
                depths[parts[0]] = int(parts[1])
        return depths

    async def truths(self) -> dict[str, dict[str, Any]]:
        """The REST body of every channel some client watches."""
        owners = {f"order:{o.id}": o.user for o in self.orders.values()}
        owners |= {f"cart:{c.cart_id}": c.user for c in self.customers}
        channels = sorted({channel for w in self.watchers for channel in w.views})
        gate = asyncio.Semaphore(16)

        async def one(channel: str) -> tuple[str, dict[str, Any]]:
            async with gate:
                body, _, _ = await self.rest.state(channel, owners.get(channel))
                return channel, body

        return dict(await asyncio.gather(*(one(c) for c in channels)))

    def client_mismatches(self, truths: dict[str, dict[str, Any]]) -> list[str]:
        problems = []
        for watcher in self.watchers:
            if not watcher.connected:
                problems.append(f"{watcher.name}: not connected ({watcher.client.state})")
            for channel in watcher.unsubscribed_channels():
                problems.append(f"{watcher.name}: {channel} not subscribed")
            for channel, view in watcher.views.items():
                want = project(channel, truths[channel])
                if view.state != want:
                    problems.append(
                        f"{watcher.name} {channel}: holds {view.state} (offset {view.offset}, from "
                        f"{view.source or 'nothing'}), the service says {want}"
                    )
        return problems

    async def audit(self, timeout: float = 20.0) -> tuple[list[str], str]:
        """Every check; returns (problems, summary). Client views get ``timeout`` s to converge."""
        deadline = time.monotonic() + timeout
        while True:
            truths = await self.truths()
            mismatches = self.client_mismatches(truths)
            if not mismatches or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        problems = list(mismatches)
        problems += [a for w in self.watchers for a in w.anomalies]
        if not any(w.connects > 1 for w in self.watchers):  # the test must not pass vacuously
            problems.append("no client reconnected: the gateway kill reached nobody")
        if not any(v.recovered for w in self.watchers for v in w.views.values()):
            problems.append("no resubscription recovered: every reconnect fell back to reloading state")
        problems += await self.ledger(truths)
        return problems, self.summary(truths)

    async def ledger(self, truths: dict[str, dict[str, Any]]) -> list[str]:
        """Stock: available + reserved == initial + restocks, never below zero, and the reserved units
        are exactly those of the orders that hold stock. Orders: one per placement, whatever the retries."""
        problems = []
        ids = list(self.products)
        available = dict(
            await self.fetch("catalog", "SELECT id, available FROM products WHERE id = any($1::bigint[])", ids)
        )
        rows = await self.fetch(
            "catalog",
            "SELECT order_id, product_id, quantity FROM reservations"
            " WHERE state = 'reserved' AND product_id = any($1::bigint[])",
            ids,
        )
        reserved: Counter[int] = Counter()
        by_order: dict[int, Counter[int]] = {}
        for row in rows:
            reserved[row["product_id"]] += row["quantity"]
            by_order.setdefault(row["order_id"], Counter())[row["product_id"]] += row["quantity"]
        for product_id, initial in self.products.items():
            expected = initial + self.restocked[product_id]
            if available[product_id] < 0:
                problems.append(f"product {product_id}: oversold, available {available[product_id]}")
            if available[product_id] + reserved[product_id] != expected:
                problems.append(
                    f"product {product_id}: available {available[product_id]} + reserved {reserved[product_id]} "
                    f"!= initial {initial} + restocks {self.restocked[product_id]}"
                )
            rest = truths[f"stock:{product_id}"]["available"]
            if rest != available[product_id]:
                problems.append(
                    f"product {product_id}: REST says {rest} available, the database {available[product_id]}"
                )
        for order in self.orders.values():
            body = truths[f"order:{order.id}"]
            wanted: Counter[int] = Counter()
            if body["status"] in HOLDS_STOCK:
                for item in body["items"]:
                    wanted[item["product_id"]] += item["quantity"]
            if by_order.pop(order.id, Counter()) != wanted:
                problems.append(
                    f"order {order.id} ({body['status']}): the catalog reserves "
                    f"{dict(by_order.get(order.id, {}))}, the order holds {dict(wanted)}"
                )
        for order_id, units in by_order.items():
            problems.append(f"reservation of unknown order {order_id}: {dict(units)}")
        users = [c.user for c in self.customers]
        stored = await self.fetchval("orders", "SELECT count(*) FROM orders WHERE user_id = any($1::text[])", users)
        if stored != len(self.orders):
            problems.append(f"{stored} orders stored for {len(self.orders)} placed (retries must not duplicate)")
        dead = {q: n for q, n in (await asyncio.to_thread(self.queue_depths)).items() if q.endswith(".dlq")}
        grown = {q: n - self.dead_before.get(q, 0) for q, n in dead.items() if n > self.dead_before.get(q, 0)}
        if grown:
            problems.append(f"messages dead-lettered during the soak: {grown}")
        return problems

    def summary(self, truths: dict[str, dict[str, Any]]) -> str:
        statuses = Counter(truths[f"order:{o}"]["status"] for o in self.orders)
        publications: Counter[str] = Counter()
        loads = reloads = recovered = 0
        for watcher in self.watchers:
            for channel, view in watcher.views.items():
                publications[namespace(channel)] += view.publications
                loads += view.loads
                reloads += max(0, view.loads - 1)
                recovered += view.recovered
        reconnects = sum(w.connects - 1 for w in self.watchers)
        lags = sorted(lag for w in self.watchers for _, lag in w.lags)
        slow: dict[str, list[int]] = {}  # gateway -> seconds into the traffic with deliveries over 1 s late
        for w in self.watchers:
            gateway = w.name.rsplit("@", 1)[1]
            slow[gateway] = sorted(
                {*slow.get(gateway, []), *(round(at - self.started) for at, lag in w.lags if lag > 1)}
            )
        errors: Counter[str] = Counter()
        for watcher in self.watchers:
            errors.update(watcher.errors)
        lines = [
            f"soak: {self.seconds:.0f}s of traffic, seed {self.seed}, {len(self.products)} products, "
            f"{len(self.customers)} customers, {len(self.watchers)} SDK clients on "
            f"{len(self.stack.gateway_urls)} gateways",
            f"  faults: {'; '.join(self.faults)}",
            f"  orders: {len(self.orders)} placed; final status: {dict(sorted(statuses.items()))}",
            f"  traffic: {dict(sorted(self.counts.items()))}",
            f"  restocked units: {sum(self.restocked.values())}; "
            + ", ".join(
                f"product {p}: {self.products[p]} + {self.restocked[p]} -> {truths[f'stock:{p}']['available']} left"
                for p in self.products
            ),
            f"  publications received: {dict(sorted(publications.items()))}; channels watched: "
            f"{sum(len(w.views) for w in self.watchers)}",
            f"  order status delivery (change -> client): {lag_summary(lags)}; late (>1 s) at seconds: {slow}",
            f"  reconnects: {reconnects}; resubscribes recovered: {recovered}; state loads: {loads} "
            f"({reloads} reloads after 112)",
            f"  client events: {dict(errors.most_common(8))}",
            f"  reloads: {[f'{w.name} {r}' for w in self.watchers for r in w.reloads][:6]}",
            "  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items()),
        ]
        return "\n".join(lines)

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.watchers), return_exceptions=True)


def lag_summary(lags: list[float]) -> str:
    if not lags:
        return "none"
    at = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    slow = sum(1 for lag in lags if lag > 1.0)
    return f"median {at(0.5) * 1000:.0f} ms, p99 {at(0.99):.2f} s, max {lags[-1]:.1f} s, {slow} over 1 s"
