"""Correctness beside the load: one official centrifuge-python client per scenario.

It connects and subscribes like an app does (the lean client only speaks enough to load the
gateway); at the end it must have received every publication of the window, in order, each
exactly once, with data intact, or the scenario says so.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from centrifuge import Client, PublicationContext, SubscribedContext, SubscriptionEventHandler


class SdkWatcher:
    def __init__(self, url: str, channel: str, token: str = "") -> None:
        self.url = url
        self.channel = channel
        self.token = token
        self.offsets: list[int] = []
        self.latencies: list[float] = []
        self.bad_data = 0
        self.subscribed = asyncio.Event()
        self.client: Client | None = None

    async def start(self) -> None:
        watcher = self

        class Events(SubscriptionEventHandler):
            async def on_subscribed(self, ctx: SubscribedContext) -> None:
                watcher.subscribed.set()

            async def on_publication(self, ctx: PublicationContext) -> None:
                now = time.time()
                watcher.offsets.append(ctx.pub.offset)
                data = ctx.pub.data
                if not isinstance(data, dict) or "product_id" not in data:
                    watcher.bad_data += 1
                elif "ts" in data:
                    watcher.latencies.append(now - float(data["ts"]))

        self.client = Client(self.url, token=self.token, proxy=None)  # type: ignore[arg-type]
        sub = self.client.new_subscription(self.channel, events=Events())
        await self.client.connect()
        await sub.subscribe()
        await asyncio.wait_for(self.subscribed.wait(), 15)

    def reset(self) -> None:
        self.offsets.clear()
        self.latencies.clear()
        self.bad_data = 0

    def verdict(self, first: int, last: int) -> dict[str, Any]:
        """Did it get exactly ``first..last``, in order, once each?"""
        window = [o for o in self.offsets if first <= o <= last]
        expected = last - first + 1 if last >= first else 0
        in_order = all(b > a for a, b in itertools.pairwise(window))
        ok = window == list(range(first, last + 1)) and self.bad_data == 0
        return {
            "sdk": "centrifuge-python",
            "channel": self.channel,
            "expected": expected,
            "received": len(window),
            "in_order": in_order,
            "duplicates": len(window) - len(set(window)),
            "bad_data": self.bad_data,
            "ok": ok,
        }

    async def close(self) -> None:
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.disconnect(), 5)
            except Exception:  # noqa: BLE001 - best effort at the end of a scenario
                pass
