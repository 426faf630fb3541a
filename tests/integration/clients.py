"""Small helpers the cross-service tests share: REST calls and a live subscriber on the gateway."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    PublicationContext,
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
    http: httpx.AsyncClient, stack: Stack, user: str, order_id: int, status: str
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        order = await order_status(http, stack, user, order_id)
        return order if order["status"] == status else None

    result = await eventually(check, timeout=20)
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
