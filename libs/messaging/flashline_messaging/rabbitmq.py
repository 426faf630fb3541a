"""The bus on RabbitMQ: one durable quorum queue per service, bound per handled event type.

Messages are acknowledged only after their handlers returned (and so after their transactions
committed), for every envelope a message carries (one, or a relay batch). Poison envelopes are
republished, each alone with the reason in a header, to the service's dead-letter queue, and
only then is their message acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client import Counter

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.topology import (
    CONSUMED_EVENTS,
    CONSUMER_HEADER,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    dead_letter_queue,
    events_queue,
)
from flashline_messaging.amqp import (
    ConfirmedPublisher,
    OutboundMessage,
    connect,
    declare_events_queue,
    declare_shared_topology,
)
from flashline_messaging.bus import E
from flashline_messaging.dispatch import DeadLettered, Dispatcher

log = logging.getLogger("flashline.consumer")

DEAD_LETTERED = Counter("flashline_consumer_dead_lettered_total", "Messages sent to the dead-letter queue", ["service"])
CONSUMED = Counter("flashline_consumer_handled_total", "Messages handled and acknowledged", ["service"])


class RabbitMQEventBus:
    def __init__(
        self,
        url: str,
        *,
        service: str,
        prefetch: int = 32,
        max_attempts: int = 5,
        base_backoff: float = 0.05,
    ) -> None:
        self._url = url
        self._service = service
        self._prefetch = prefetch
        self._dispatcher = Dispatcher(max_attempts=max_attempts, base_backoff=base_backoff)
        self._connection: AbstractRobustConnection | None = None
        self._publisher: ConfirmedPublisher | None = None
        self._consumer_tag: str | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    @property
    def queue_name(self) -> str:
        return events_queue(self._service)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    def subscribe(
        self, event_type: type[E], handler: Callable[[E, EventEnvelope], Awaitable[None]], *, binding: str | None = None
    ) -> None:
        self._dispatcher.subscribe(event_type, handler, binding=binding)

    async def start(self) -> None:
        self._connection = await connect(self._url, name=f"{self._service}-consumer")
        self._publisher = ConfirmedPublisher(self._connection)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        declared = CONSUMED_EVENTS.get(self._service)
        if declared is not None and set(declared) != set(self._dispatcher.bindings):
            raise RuntimeError(
                f"{self._service} subscribes to {sorted(self._dispatcher.bindings)} but the "
                f"topology (flashline_contracts.topology.CONSUMED_EVENTS) says {sorted(declared)}"
            )
        await declare_shared_topology(channel)
        events = await channel.get_exchange(EVENTS_EXCHANGE)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
        self._queue = await declare_events_queue(channel, self._service, events=events, dead_letter=dlx)
        for binding in self._dispatcher.bindings:
            await self._queue.bind(events, routing_key=binding)
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info("%s consuming %s (%s)", self._service, self.queue_name, ", ".join(self._dispatcher.bindings))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            outcomes = await self._dispatcher.deliver(message.body)
            dead = [outcome for outcome in outcomes if isinstance(outcome, DeadLettered)]
            if dead:
                await self._dead_letter(message, dead)
                DEAD_LETTERED.labels(self._service).inc(len(dead))
            CONSUMED.labels(self._service).inc(len(outcomes) - len(dead))
            await message.ack()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(message.nack(requeue=True))
            raise
        except Exception:
            log.exception("could not settle message %s; requeueing", message.message_id)
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _dead_letter(self, message: AbstractIncomingMessage, dead: list[DeadLettered]) -> None:
        assert self._publisher is not None
        await self._publisher.publish(
            [
                OutboundMessage(
                    exchange=DEAD_LETTER_EXCHANGE,
                    routing_key=dead_letter_queue(self._service),
                    message_id=outcome.event_id or message.message_id or "",
                    body=outcome.body,
                    headers={
                        REASON_HEADER: outcome.reason,
                        CONSUMER_HEADER: self._service,
                        ORIGINAL_ROUTING_KEY_HEADER: message.routing_key or "",
                        "x-flashline-attempts": outcome.attempts,
                    },
                )
                for outcome in dead
            ]
        )

    async def publish(self, envelope: EventEnvelope) -> None:
        if self._publisher is None:
            self._connection = await connect(self._url, name=f"{self._service}-publisher")
            self._publisher = ConfirmedPublisher(self._connection)
        await self._publisher.publish(
            [
                OutboundMessage(
                    exchange=EVENTS_EXCHANGE,
                    routing_key=envelope.topic,
                    message_id=str(envelope.event_id),
                    body=orjson.dumps(envelope.model_dump(mode="json")),
                )
            ]
        )

    async def stop(self, *, grace: float = 10.0) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=grace)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
        self._publisher = None
