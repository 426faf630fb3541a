"""Small helpers the cross-service tests share: REST calls and a live subscriber on the gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ConnectingContext,
    PublicationContext,
    StreamPosition,
    SubscribedContext,
    SubscriptionEventHandler,
)

from .conftest import Stack, eventually


async def create_product(
    http: httpx.AsyncClient, stack: Stack, *, stock: int, price_cents: int = 1500
) -> dict[str, Any]:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    response = await http.post(
        f"{stack.url('catalog')}/products",
        json={"sku": sku, "name": f"Sneaker {sku[-4:]}", "price_cents": price_cents, "currency": "EUR", "stock": stock},
        headers=stack.auth("carol", "staff"),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def get_product(http: httpx.AsyncClient, stack: Stack, product_id: int) -> dict[str, Any]:
    response = await http.get(f"{stack.url('catalog')}/products/{product_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def place_order(
    http: httpx.AsyncClient, stack: Stack, user: str, items: list[dict[str, int]], *, cart_id: str | None = None
) -> dict[str, Any]:
    """POST /orders once the orders service has learnt the products from the catalog's events."""
    body: dict[str, Any] = {"items": items}
    if cart_id:
        body["cart_id"] = cart_id
    key = uuid.uuid4().hex

    async def attempt() -> httpx.Response | None:
        response = await http.post(
            f"{stack.url('orders')}/orders", json=body, headers={**stack.auth(user), "Idempotency-Key": key}
        )
        return response if response.status_code == 202 else None

    response = await eventually(attempt)
    assert isinstance(response, httpx.Response)
    return response.json()


async def order_status(
    http: httpx.AsyncClient, stack: Stack, user: str, order_id: int, role: str = "customer"
) -> dict[str, Any]:
    response = await http.get(f"{stack.url('orders')}/orders/{order_id}", headers=stack.auth(user, role))
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for_status(
    http: httpx.AsyncClient, stack: Stack, user: str, order_id: int, status: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    """The order once it has reached ``status`` (polled over REST)."""

    async def check() -> dict[str, Any] | None:
        order = await order_status(http, stack, user, order_id)
        return order if order["status"] == status else None

    result = await eventually(check, timeout=timeout, interval=0.05)
    assert isinstance(result, dict)
    return result


@dataclass
class Subscriber:
    """A centrifuge-python client subscribed to one channel; collects publication data."""

    client: Client
    received: list[dict[str, Any]] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    recovered: list[bool] = field(default_factory=list)
    client_id: str = ""

    async def close(self) -> None:
        await self.client.disconnect()

    async def wait_for(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            return next((d for d in reversed(self.received) if predicate(d)), None)

        found = await eventually(check, timeout=timeout)
        assert isinstance(found, dict)
        return found


async def subscribe(url: str, channel: str, *, token: str = "", sub_token: str | None = None) -> Subscriber:
    holder: dict[str, Subscriber] = {}

    class ClientEvents(ClientEventHandler):
        async def on_connected(self, ctx: ConnectedContext) -> None:
            holder["s"].client_id = ctx.client

    client = Client(url, token=token, events=ClientEvents())

    class Events(SubscriptionEventHandler):
        async def on_subscribed(self, ctx: SubscribedContext) -> None:
            holder["s"].recovered.append(ctx.recovered)
            holder["s"].subscribed.set()

        async def on_publication(self, ctx: PublicationContext) -> None:
            holder["s"].received.append(ctx.pub.data)

    subscriber = Subscriber(client)
    holder["s"] = subscriber
    sub = client.new_subscription(channel, events=Events(), token=sub_token or "")
    await client.connect()
    await sub.subscribe()
    await asyncio.wait_for(subscriber.subscribed.wait(), 10)
    return subscriber


# ---- fault tests: a client app that loads state over REST, then follows the channel ------------


@dataclass
class Timeline:
    """One subscription as a client app sees it: each state it loaded over REST, then publications.

    ``loads`` holds ``(offset, epoch, data)`` per ``get_state`` call (the first subscribe, or a
    reload after an unrecoverable position); ``pubs`` every publication as ``(offset, data)``.
    """

    channel: str
    loads: list[tuple[int, str, Any]] = field(default_factory=list)
    pubs: list[tuple[int, Any]] = field(default_factory=list)
    subscribed: list[SubscribedContext] = field(default_factory=list)
    held_at: list[int] = field(default_factory=list)  # the offset the app held at each ``subscribed``

    @property
    def offsets(self) -> list[int]:
        return [offset for offset, _ in self.pubs]

    def missed(self, attempt: int) -> int:
        """How far the channel had moved past what the app held when subscribe ``attempt`` succeeded."""
        position = self.subscribed[attempt].stream_position
        return (position.offset if position else 0) - self.held_at[attempt]

    @property
    def last(self) -> tuple[int, Any]:
        """The newest (offset, data) the app holds, whether loaded or published."""
        candidates = [(offset, data) for offset, _, data in self.loads[-1:]] + self.pubs[-1:]
        return max(candidates, key=lambda c: c[0]) if candidates else (0, None)

    def gapless_to(self, top: int) -> bool:
        """Loaded once, then every publication after that position up to ``top``, each exactly once."""
        if len(self.loads) != 1:
            return False
        return self.offsets == list(range(self.loads[0][0] + 1, top + 1))


Loader = Callable[[], Awaitable[tuple[int, str, Any]]]


class LiveClient(ClientEventHandler):
    """An official centrifuge-python client with several subscriptions, each a ``Timeline``.

    Subscriptions load their state through ``load`` (the SDK's ``get_state``: the REST
    representation and its ``stream`` position), then get every later publication; the SDK
    reconnects by itself (0.1 to 1 s apart) and resubscribes with recovery.
    """

    def __init__(self, url: str, token: str = "", name: str = "") -> None:
        self.name = name or url
        self.client_ids: list[str] = []
        self.disconnects: list[tuple[int, str]] = []
        self.timelines: dict[str, Timeline] = {}
        self.client = Client(
            url, events=self, token=token, timeout=5.0, min_reconnect_delay=0.1, max_reconnect_delay=1.0
        )

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.client_ids.append(ctx.client)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        if self.client_ids:
            self.disconnects.append((ctx.code, ctx.reason))

    async def connect(self, timeout: float = 10.0) -> LiveClient:
        await self.client.connect()
        await self.client.ready(timeout)
        return self

    async def watch(self, channel: str, load: Loader, *, token: str = "", timeout: float = 10.0) -> Timeline:
        timeline = self.timelines[channel] = Timeline(channel)

        class Events(SubscriptionEventHandler):
            async def on_subscribed(self, ctx: SubscribedContext) -> None:
                timeline.held_at.append(timeline.last[0])
                timeline.subscribed.append(ctx)

            async def on_publication(self, ctx: PublicationContext) -> None:
                timeline.pubs.append((ctx.pub.offset, ctx.pub.data))

        async def get_state(_: str) -> StreamPosition:
            offset, epoch, data = await load()
            timeline.loads.append((offset, epoch, data))
            return StreamPosition(offset=offset, epoch=epoch)

        sub = self.client.new_subscription(
            channel, events=Events(), token=token, get_state=get_state, max_resubscribe_delay=1.0
        )
        await sub.subscribe()
        await sub.ready(timeout)
        return timeline

    async def close(self) -> None:
        await self.client.disconnect()


def order_loader(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> Loader:
    """``GET /orders/{id}`` as the order page loads it: (stream offset, epoch, order)."""

    async def load() -> tuple[int, str, Any]:
        order = await order_status(http, stack, user, order_id)
        return order["stream"]["offset"], order["stream"]["epoch"], order

    return load


def product_loader(http: httpx.AsyncClient, stack: Stack, product_id: int) -> Loader:
    """``GET /products/{id}`` as the product page loads it: (stream offset, epoch, product)."""

    async def load() -> tuple[int, str, Any]:
        product = await get_product(http, stack, product_id)
        return product["stream"]["offset"], product["stream"]["epoch"], product

    return load


async def order_grant(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> str:
    response = await http.post(f"{stack.url('orders')}/orders/{order_id}/subscription-token", headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def staff_move(http: httpx.AsyncClient, stack: Stack, order_id: int, status: str) -> None:
    response = await http.post(
        f"{stack.url('orders')}/orders/{order_id}/status", json={"status": status}, headers=stack.auth("carol", "staff")
    )
    assert response.status_code == 200, response.text


async def pay(http: httpx.AsyncClient, stack: Stack, user: str, order_id: int) -> None:
    response = await http.post(f"{stack.url('orders')}/orders/{order_id}/pay", headers=stack.auth(user))
    assert response.status_code == 200, response.text


async def cancel(http: httpx.AsyncClient, stack: Stack, order_id: int, headers: dict[str, str]) -> None:
    response = await http.post(f"{stack.url('orders')}/orders/{order_id}/cancel", headers=headers)
    assert response.status_code == 200, response.text


async def followers_end_on(followed: dict[int, list[Timeline]], final: dict[int, dict[str, Any]]) -> None:
    """Every client following an order reaches its final version, having seen each version once."""

    async def caught_up() -> bool:
        return all(line.last[0] == final[oid]["version"] for oid, lines in followed.items() for line in lines)

    await eventually(caught_up, timeout=20, interval=0.1)
    for oid, lines in followed.items():
        for line in lines:
            check_order_timeline(line, final[oid])


def check_order_timeline(timeline: Timeline, order: dict[str, Any]) -> None:
    """Loaded once over REST, then every later version of the order exactly once, in order."""
    history = [h["status"] for h in order["history"]]
    assert timeline.gapless_to(order["version"]), (timeline.channel, timeline.loads, timeline.offsets)
    loaded_offset, loaded_epoch, loaded = timeline.loads[0]
    assert loaded["status"] == history[loaded_offset - 1]
    assert loaded_epoch == order["stream"]["epoch"]
    assert [data["status"] for _, data in timeline.pubs] == history[loaded_offset:], timeline.channel
    assert all(data["version"] == offset for offset, data in timeline.pubs)
    assert all(ctx.stream_position.epoch == order["stream"]["epoch"] for ctx in timeline.subscribed)
