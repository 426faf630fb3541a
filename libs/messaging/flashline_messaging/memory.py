"""An in-memory bus for unit tests; it follows the same delivery policy as RabbitMQ's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from flashline_contracts.batches import documents
from flashline_contracts.envelope import EventEnvelope
from flashline_messaging.bus import E
from flashline_messaging.dispatch import DeadLettered, Dispatcher
from flashline_messaging.topics import matches


@dataclass(frozen=True, slots=True)
class DeadLetter:
    body: bytes
    reason: str
    attempts: int


class InMemoryEventBus:
    """Delivers each published envelope to the matching handlers before ``publish`` returns."""

    def __init__(self, *, max_attempts: int = 5, base_backoff: float = 0.0) -> None:
        self._dispatcher = Dispatcher(max_attempts=max_attempts, base_backoff=base_backoff)
        self.published: list[EventEnvelope] = []
        self.dead_letters: list[DeadLetter] = []
        self.started = False

    def subscribe(
        self, event_type: type[E], handler: Callable[[E, EventEnvelope], Awaitable[None]], *, binding: str | None = None
    ) -> None:
        self._dispatcher.subscribe(event_type, handler, binding=binding)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def publish(self, envelope: EventEnvelope) -> None:
        self.published.append(envelope)
        await self.deliver_raw(orjson.dumps(envelope.model_dump(mode="json")), envelope.topic)

    async def deliver_raw(self, body: bytes, routing_key: str) -> None:
        """Deliver bytes as the broker would (tests use it for poison messages)."""
        bound = any(matches(binding, routing_key) for binding in self._dispatcher.bindings)
        if not bound and self._parses(body):
            return  # not bound: RabbitMQ would not route it to this service either
        for outcome in await self._dispatcher.deliver(body):
            if isinstance(outcome, DeadLettered):
                self.dead_letters.append(DeadLetter(outcome.body, outcome.reason, outcome.attempts))

    @staticmethod
    def _parses(body: bytes) -> bool:
        """Whether every envelope of a message (one, or a relay batch) is well-formed."""
        try:
            for document in documents(orjson.loads(body)):
                EventEnvelope.model_validate(document)
        except Exception:  # noqa: BLE001
            return False
        return True
