"""The bus port: subscribe handlers to integration event types, publish envelopes.

Two adapters implement it: ``rabbitmq.RabbitMQEventBus`` and ``memory.InMemoryEventBus``; one
contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent

E = TypeVar("E", bound=IntegrationEvent)
Handler = Callable[[Any, EventEnvelope], Awaitable[None]]


class EventBus(Protocol):
    def subscribe(
        self, event_type: type[E], handler: Callable[[E, EventEnvelope], Awaitable[None]], *, binding: str | None = None
    ) -> None:
        """Register before ``start``: bindings are declared from the registered types (or ``binding``,
        a topic pattern narrowing the type's, e.g. ``OrderStatusChanged.v1.confirmed.cart``)."""

    async def publish(self, envelope: EventEnvelope) -> None:
        """Publish now and wait for the broker's confirm (services publish via the outbox)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
