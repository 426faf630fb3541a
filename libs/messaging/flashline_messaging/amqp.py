"""RabbitMQ plumbing shared by the relay and the consumer: connect, declare, confirmed publish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.connection import make_url
from aio_pika.robust_connection import RobustConnection

from flashline_contracts.topology import (
    CONSUMED_EVENTS,
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    EVENTS_EXCHANGE,
    PUSH_EXCHANGE,
    PUSH_STREAM,
    PUSH_STREAM_ARGUMENTS,
    dead_letter_queue,
    events_queue,
    events_queue_arguments,
)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to publish: where, what, and its stable id (dedupe key downstream)."""

    exchange: str
    routing_key: str
    message_id: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)


RECONNECT_INTERVAL = 1.0  # seconds between reconnect attempts (aio-pika's default, 5, delays live updates)


async def connect(url: str, *, name: str, timeout: float = 10.0) -> AbstractRobustConnection:
    """A robust connection: aio-pika reconnects it and restores channels after broker outages.

    Built by hand rather than with ``connect_robust`` so that a failed or cancelled first attempt
    closes it: aio-pika's reconnect loop otherwise outlives the caller and ignores cancellation.
    A ``reconnect_interval`` in the URL's query overrides the 1 s between reconnect attempts.
    """
    parsed = make_url(url)
    if "reconnect_interval" not in parsed.query:
        parsed = parsed.update_query(reconnect_interval=RECONNECT_INTERVAL)
    connection = RobustConnection(parsed, client_properties={"connection_name": name})
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(connection.close())
        raise
    return connection


async def declare_shared_topology(channel: AbstractChannel) -> None:
    """Exchanges, the push stream and every service's event queue, bound (idempotent).

    Declared by every producer before it publishes, so what it publishes reaches consumers
    that have not started yet (``CONSUMED_EVENTS``).
    """
    events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    push = await channel.declare_exchange(PUSH_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    stream = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
    await stream.bind(push, routing_key="")
    for service, routing_keys in CONSUMED_EVENTS.items():
        queue = await declare_events_queue(channel, service, events=events, dead_letter=dlx)
        for key in routing_keys:
            await queue.bind(events, routing_key=key)


async def declare_events_queue(
    channel: AbstractChannel,
    service: str,
    *,
    events: aio_pika.abc.AbstractExchange,
    dead_letter: aio_pika.abc.AbstractExchange,
) -> aio_pika.abc.AbstractQueue:
    """A service's quorum queue of events and its dead-letter queue (not bound to any event)."""
    dlq = await channel.declare_queue(dead_letter_queue(service), durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(dead_letter, routing_key=dead_letter_queue(service))
    return await channel.declare_queue(
        events_queue(service), durable=True, arguments=events_queue_arguments(service, delivery_limit=DELIVERY_LIMIT)
    )


class ConfirmedPublisher:
    """Publishes batches in order on one confirm-mode channel; returns once all are confirmed.

    Raises if any message is nacked, returned or the connection fails: the caller keeps the
    batch and tries again later (duplicates are fine downstream: consumers dedupe by id).
    """

    def __init__(self, connection: AbstractRobustConnection, *, timeout: float = 15.0) -> None:
        self._connection = connection
        self._timeout = timeout
        self._channel: AbstractChannel | None = None

    async def _ready_channel(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=True)
            await declare_shared_topology(self._channel)
        return self._channel

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        # On aiormq's channel with wait=False: aio-pika's Exchange.publish waits, per message and
        # holding the channel's lock, until the writer task has flushed it, so a batch costs one
        # event-loop turn per message; on a busy service loop that capped a relay at a few hundred
        # messages a second. The lock still keeps wire order; the confirms are awaited below.
        channel = await (await self._ready_channel()).get_underlay_channel()
        sends = []
        for message in messages:
            properties = aio_pika.Message(
                body=b"",
                message_id=message.message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=message.headers or None,
            ).properties
            # Not mandatory: an event nobody subscribes to yet is not an error.
            sends.append(
                asyncio.ensure_future(
                    channel.basic_publish(
                        message.body,
                        exchange=message.exchange,
                        routing_key=message.routing_key,
                        properties=properties,
                        mandatory=False,
                        wait=False,  # type: ignore[call-arg]  # aiormq's Channel has it, its ABC not
                    )
                )
            )
        try:
            async with asyncio.timeout(self._timeout):  # not wait_for, which can drop a cancellation on 3.11
                await asyncio.gather(*sends)
        except BaseException:
            for send in sends:
                send.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
            self._channel = None
            raise
