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
import asyncpg
import httpx
import orjson

from flashline_contracts.batches import documents
from flashline_contracts.topology import PUSH_EXCHANGE, PUSH_STREAM, PUSH_STREAM_ARGUMENTS
from flashline_messaging.outbox import NOTIFY_CHANNEL
from flashline_messaging.relay import asyncpg_dsn

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
    """Reads the push stream from now on; keeps ``published_at`` of the channels in ``watch``.

    Per publication also: ``received``, when this stream consumer (read like the gateway reads
    it) got it, and ``routed``, when a plain queue bound to the push exchange got it (the relay's
    publish reaching the broker, before the stream's own delivery).
    """

    def __init__(self, amqp_url: str, watch: dict[str, int]) -> None:
        self.url = amqp_url
        self.watch = watch  # channel name -> channel index used in keys
        self.published: dict[int, float] = {}
        self.received: dict[int, float] = {}
        self.routed: dict[int, float] = {}
        self.top: dict[int, int] = {}
        self._conn: Any = None

    async def start(self) -> None:
        self._conn = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "bench-tap"})
        channel = await self._conn.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
        await queue.consume(self._on_message, no_ack=False, arguments={"x-stream-offset": "next"})
        plain = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await plain.bind(PUSH_EXCHANGE, routing_key="")
        await plain.consume(self._on_routed, no_ack=True)

    def _key(self, doc: Any) -> int | None:
        if not isinstance(doc, dict):
            return None
        chan, offset = self.watch.get(str(doc.get("channel"))), doc.get("offset")
        return (chan << 32) | offset if chan is not None and isinstance(offset, int) else None

    @staticmethod
    def _documents(body: bytes) -> list[Any]:
        """The publications of a push-log message (one, or a relay batch); none if it is not JSON."""
        try:
            return documents(orjson.loads(body))
        except ValueError:
            return []

    async def _on_routed(self, message: Any) -> None:
        now = time.time()
        for doc in self._documents(message.body):
            key = self._key(doc)
            if key is not None:
                self.routed[key] = now

    async def _on_message(self, message: Any) -> None:
        now = time.time()
        for doc in self._documents(message.body):
            try:
                key = self._key(doc)
                if key is not None:
                    ts = datetime.fromisoformat(doc["published_at"].replace("Z", "+00:00")).timestamp()
                    self.published[key] = ts
                    self.received[key] = now
                    chan = key >> 32
                    self.top[chan] = max(self.top.get(chan, 0), doc["offset"])
            except (ValueError, KeyError, TypeError):
                pass
        await message.ack()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class CommitWatch:
    """When a producer's publications on ``channel`` commit, heard as its outbox NOTIFY.

    The outbox statement fires ``pg_notify`` in the writing transaction; Postgres delivers it
    at commit, to the relay and to this listener alike. On each notification the channel's top
    offset is read back; the offsets it reveals get the notification's receive time (an upper
    bound of their commit, a little late when two commits land in one notification's query).
    """

    def __init__(self, database_url: str, channel: str, index: int) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.channel = channel
        self.index = index
        self.committed: dict[int, float] = {}
        self._top = 0
        self._conn: Any = None
        self._heard: list[float] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.dsn)
        self._top = await self._read_top()
        await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)

    async def _read_top(self) -> int:
        top = await self._conn.fetchval("SELECT top_offset FROM channel_streams WHERE channel = $1", self.channel)
        return int(top or 0)

    def _on_notify(self, *_: object) -> None:
        self._heard.append(time.time())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        while self._heard:
            heard, self._heard = self._heard[0], self._heard[1:]
            top = await self._read_top()
            for offset in range(self._top + 1, top + 1):
                self.committed[(self.index << 32) | offset] = heard
            self._top = max(self._top, top)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            await self._conn.close()


def histogram_buckets(metrics_text: bytes, name: str) -> dict[float, float]:
    """Cumulative counts per upper bound of a Prometheus histogram in a ``/metrics`` page."""
    pattern = re.compile(rb"^" + re.escape(name.encode()) + rb'_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.M)
    return {float(le): float(count) for le, count in pattern.findall(metrics_text)}


async def gateway_histogram(ports: Iterable[int], name: str) -> dict[float, float]:
    """A histogram's cumulative buckets summed over gateways."""
    total: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for port in ports:
            page = (await client.get(f"http://127.0.0.1:{port}/metrics")).content
            for le, count in histogram_buckets(page, name).items():
                total[le] = total.get(le, 0.0) + count
    return total
