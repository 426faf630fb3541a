"""The broker port on RabbitMQ: the push log is a stream, control and presence are fanouts.

Topology (declared idempotently by every pod and every producer, same arguments):
- fanout exchange ``flashline.push`` -> stream ``flashline.push``: every pod reads the whole
  stream, so a publication costs the broker one message whatever the number of pods, and no
  per-channel bindings exist to storm;
- fanout exchanges ``flashline.gateway.control`` and ``flashline.gateway.presence``, each pod
  with an exclusive auto-delete queue bound to each.

After a broker reconnect, aio-pika re-consumes the stream with the original ``x-stream-offset``
(the warm horizon): the replay is dropped by offset, and anything missed meanwhile is read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from flashline_contracts.topology import PUSH_EXCHANGE, PUSH_STREAM, PUSH_STREAM_ARGUMENTS
from push_gateway.broker import MARKER_HEADER, OnMarker, OnMessage, OnPublication, decode_push_message

log = logging.getLogger("push_gateway.broker")

CONTROL_EXCHANGE = "flashline.gateway.control"
PRESENCE_EXCHANGE = "flashline.gateway.presence"
ACK_EVERY = 100
ACK_DELAY = 0.02
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a pod reads the push log. Its retention is PUSH_STREAM_ARGUMENTS, shared with producers."""

    prefetch: int = 1000


async def declare_push_log(
    channel: aio_pika.abc.AbstractChannel, options: StreamOptions
) -> aio_pika.abc.AbstractExchange:
    """The push exchange bound to the push stream; what producers' relays declare too."""
    exchange = await channel.declare_exchange(PUSH_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    queue = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
    await queue.bind(exchange, routing_key="")
    return exchange


def _handled(handler: Callable[[T], None], item: T) -> None:
    """Run a push-log handler: one failure must not stop the pod reading the log, or the rest of a batch."""
    try:
        handler(item)
    except Exception:
        log.exception("push message handler failed")


class RabbitBroker:
    def __init__(self, url: str, options: StreamOptions | None = None) -> None:
        self._url = url
        self._options = options or StreamOptions()
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._push_exchange: aio_pika.abc.AbstractExchange | None = None
        self._control_exchange: aio_pika.abc.AbstractExchange | None = None
        self._presence_exchange: aio_pika.abc.AbstractExchange | None = None
        self._unacked = 0
        self._last: AbstractIncomingMessage | None = None
        self._ack_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()

    async def connect(self) -> None:
        # Reconnect every second, not aio-pika's 5 s: after an outage the pushes resume sooner.
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": "push-gateway"}, reconnect_interval=1.0
        )
        self._publish_channel = await self._connection.channel()
        self._push_exchange = await declare_push_log(self._publish_channel, self._options)
        self._control_exchange = await self._publish_channel.declare_exchange(
            CONTROL_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )
        self._presence_exchange = await self._publish_channel.declare_exchange(
            PRESENCE_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )

    async def consume_push_log(
        self, *, since: datetime | None, on_publication: OnPublication, on_marker: OnMarker
    ) -> None:
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._options.prefetch)
        queue = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)

        async def on_message(message: AbstractIncomingMessage) -> None:
            headers = message.headers
            marker = headers.get(MARKER_HEADER) if headers else None
            if marker is not None:
                _handled(on_marker, marker.decode() if isinstance(marker, bytes) else str(marker))
            else:
                publications, problems = decode_push_message(message.body)
                for problem in problems:
                    log.warning(
                        "dropped malformed push message", extra={"reason": problem, "message_id": message.message_id}
                    )
                for publication in publications:
                    _handled(on_publication, publication)
            await self._ack_later(message)

        offset: Any = since if since is not None else "next"
        await queue.consume(on_message, no_ack=False, arguments={"x-stream-offset": offset})

    async def _ack_later(self, message: AbstractIncomingMessage) -> None:
        self._last = message
        self._unacked += 1
        if self._unacked >= ACK_EVERY:
            await self._ack_now()
        elif self._ack_handle is None:
            loop = asyncio.get_running_loop()
            self._ack_handle = loop.call_later(ACK_DELAY, self._spawn_ack)

    def _spawn_ack(self) -> None:
        self._ack_handle = None
        task = asyncio.get_running_loop().create_task(self._ack_now())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack_now(self) -> None:
        message, self._last, self._unacked = self._last, None, 0
        if message is None:
            return
        try:
            await message.ack(multiple=True)
        except Exception as exc:  # noqa: BLE001 - a channel that died meanwhile: its deliveries are gone anyway
            log.debug("ack failed", extra={"reason": str(exc)})

    async def publish_marker(self, marker: str) -> None:
        assert self._push_exchange is not None
        await self._push_exchange.publish(
            aio_pika.Message(b"", headers={MARKER_HEADER: marker}, message_id=f"marker:{marker}"), routing_key="marker"
        )

    async def publish_push(self, body: bytes, channel: str, message_id: str | None = None) -> None:
        assert self._push_exchange is not None
        await self._push_exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                message_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=channel,
        )

    async def _consume_fanout(self, exchange_name: str, on_message: OnMessage) -> None:
        assert self._connection is not None
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="")

        async def handle(message: AbstractIncomingMessage) -> None:
            try:
                doc = orjson.loads(message.body)
                if isinstance(doc, dict):
                    on_message(doc)
            except Exception:
                log.exception("fanout message handler failed", extra={"exchange": exchange_name})

        await queue.consume(handle, no_ack=True)

    async def consume_control(self, on_message: OnMessage) -> None:
        await self._consume_fanout(CONTROL_EXCHANGE, on_message)

    async def publish_control(self, message: dict[str, Any]) -> None:
        assert self._control_exchange is not None
        await self._control_exchange.publish(aio_pika.Message(orjson.dumps(message)), routing_key="")

    async def consume_presence(self, on_message: OnMessage) -> None:
        await self._consume_fanout(PRESENCE_EXCHANGE, on_message)

    async def publish_presence(self, message: dict[str, Any]) -> None:
        assert self._presence_exchange is not None
        await self._presence_exchange.publish(aio_pika.Message(orjson.dumps(message)), routing_key="")

    async def close(self) -> None:
        if self._ack_handle is not None:
            self._ack_handle.cancel()
        if self._connection is not None:
            await self._ack_now()
            await self._connection.close()
