"""The bench's side of RabbitMQ: inject publications like a producer does, and tap the push log.

``Injector`` publishes ``PushPublication`` JSON to the fanout exchange ``flashline.push`` exactly
as the outbox relays do (message id ``{channel}@{epoch}:{offset}``, persistent), with its own send
time both in ``published_at`` and in ``data.ts``; it remembers the send time of every key
(``channel index << 32 | offset``) for the latency join. ``Tap`` reads the push stream and
records ``published_at`` of the channels it is told about (the producers' commit times in the
full-path scenarios).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import orjson

from flashline_contracts.topology import PUSH_EXCHANGE, PUSH_STREAM, PUSH_STREAM_ARGUMENTS

PUBLICATIONS_RE = re.compile(rb"^flashline_gateway_publications_total ([0-9.e+]+)$", re.M)


def stock_data(product_id: int, version: int, ts: float) -> dict[str, Any]:
    """~120 bytes of JSON, the size of a real stock publication (and of the peers' benchmarks)."""
    return {
        "product_id": product_id,
        "available": 100_000 - version % 100_000,
        "status": "in_stock",
        "version": version,
        "ts": round(ts, 6),
        "sku": "SNEAKER-AIR-2025-BLK-42",
    }


class Injector:
    def __init__(self, amqp_url: str) -> None:
        self.url = amqp_url
        self.epoch = f"bench{int(time.time()) % 100000}"
        self.sent: dict[int, float] = {}
        self.top: dict[int, int] = {}
        self._conn: Any = None
        self._exchange: Any = None

    async def connect(self) -> None:
        self._conn = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "bench-injector"})
        channel = await self._conn.channel(publisher_confirms=False)
        self._exchange = await channel.declare_exchange(PUSH_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
        await queue.bind(self._exchange, routing_key="")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def publish(self, chan: int, prefix: str = "stock") -> int:
        offset = self.top.get(chan, 0) + 1
        self.top[chan] = offset
        now = time.time()
        channel = f"{prefix}:{chan}"
        body = orjson.dumps(
            {
                "channel": channel,
                "offset": offset,
                "epoch": self.epoch,
                "data": stock_data(chan, offset, now),
                "published_at": datetime.fromtimestamp(now, UTC).isoformat(),
            }
        )
        self.sent[(chan << 32) | offset] = now
        await self._exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                message_id=f"{channel}@{self.epoch}:{offset}",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=channel,
        )
        return offset

    def bounds(self, since: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Per channel, the offsets published after the ``since`` snapshot (of ``top``)."""
        return {c: (since.get(c, 0) + 1, top) for c, top in self.top.items() if top > since.get(c, 0)}

    async def run(
        self,
        *,
        rate: float,
        duration: float,
        channels: list[int],
        prefix: str = "stock",
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> int:
        """Publish round-robin over ``channels`` at ``rate``/s for ``duration`` s; returns how many.

        With ``backlog`` (publications sent but not yet read by the gateway) and ``max_backlog``,
        sending pauses while the gateway is that far behind: the rate becomes the most the gateway
        can take (the ceiling scenario) instead of a queue growing in the stream.
        """
        started = time.monotonic()
        sent = 0
        i = 0
        tick = 0.005
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= duration or (stop is not None and stop()):
                break
            due = int(rate * elapsed) + 1 - sent if rate > 0 else 256
            if backlog is not None and max_backlog and due > 0:
                room = max_backlog - backlog()
                due = min(due, max(0, room))
            for _ in range(max(0, due)):
                await self.publish(channels[i % len(channels)], prefix)
                i += 1
                sent += 1
            await asyncio.sleep(tick)
        return sent


class GatewayProgress:
    """Publications a gateway has read from the log so far (its ``/metrics``), polled in the background."""

    def __init__(self, ports: Iterable[int], interval: float = 0.05) -> None:
        self.ports = list(ports)
        self.interval = interval
        self.read = 0
        self._base = 0
        self._task: asyncio.Task | None = None
        self._client = httpx.AsyncClient(timeout=2)

    async def poll_once(self) -> int:
        total = 0
        for port in self.ports:
            r = await self._client.get(f"http://127.0.0.1:{port}/metrics")
            m = PUBLICATIONS_RE.search(r.content)
            total = max(total, int(float(m.group(1)))) if m else total
        return total

    async def start(self) -> None:
        self._base = await self.poll_once()
        self.read = 0

        async def loop() -> None:
            while True:
                try:
                    self.read = await self.poll_once() - self._base
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(self.interval)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._client.aclose()


class Tap:
    """Reads the push stream from now on; keeps ``published_at`` of the channels in ``watch``."""

    def __init__(self, amqp_url: str, watch: dict[str, int]) -> None:
        self.url = amqp_url
        self.watch = watch  # channel name -> channel index used in keys
        self.published: dict[int, float] = {}
        self.top: dict[int, int] = {}
        self.count = 0
        self._conn: Any = None

    async def start(self) -> None:
        self._conn = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "bench-tap"})
        channel = await self._conn.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
        await queue.consume(self._on_message, no_ack=False, arguments={"x-stream-offset": "next"})

    async def _on_message(self, message: Any) -> None:
        self.count += 1
        try:
            doc = orjson.loads(message.body)
            chan = self.watch.get(doc.get("channel"))
            if chan is not None:
                ts = datetime.fromisoformat(doc["published_at"].replace("Z", "+00:00")).timestamp()
                self.published[(chan << 32) | doc["offset"]] = ts
                self.top[chan] = max(self.top.get(chan, 0), doc["offset"])
        except (ValueError, KeyError, TypeError):
            pass
        await message.ack()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
