"""Helpers around the official centrifuge-python SDK."""

from __future__ import annotations

import asyncio
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)


class SubEvents(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.publications: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribed: asyncio.Queue[SubscribedContext] = asyncio.Queue()
        self.unsubscribed: asyncio.Queue[UnsubscribedContext] = asyncio.Queue()
        self.errors: list[SubscriptionErrorContext] = []

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.publications.put(ctx.pub)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        await self.subscribed.put(ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        await self.unsubscribed.put(ctx)

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.errors.append(ctx)

    async def next_pub(self, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.publications.get(), timeout)

    async def next_subscribed(self, timeout: float = 5.0) -> SubscribedContext:
        return await asyncio.wait_for(self.subscribed.get(), timeout)

    async def no_pub(self, wait: float = 0.5) -> None:
        try:
            pub = await asyncio.wait_for(self.publications.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected publication {pub}")


class ClientEvents(ClientEventHandler):
    def __init__(self) -> None:
        self.disconnected: asyncio.Queue[DisconnectedContext] = asyncio.Queue()
        self.connected = 0

    async def on_connected(self, ctx: Any) -> None:
        self.connected += 1

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        await self.disconnected.put(ctx)


def new_client(url: str, token: str = "", **kwargs: Any) -> tuple[Client, ClientEvents]:
    events = ClientEvents()
    client = Client(url, events=events, token=token, proxy=None, timeout=5.0, **kwargs)
    return client, events
