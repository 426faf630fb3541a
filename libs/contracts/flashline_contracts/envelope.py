"""The envelope every integration event travels in on the bus."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from flashline_contracts.base import Contract


class IntegrationEvent(Contract):
    """A versioned fact one service tells the others. Subclasses set TYPE and VERSION."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @classmethod
    def routing_key(cls) -> str:
        return f"{cls.TYPE}.v{cls.VERSION}"

    @classmethod
    def topic(cls, payload: Mapping[str, Any]) -> str:
        """The routing key an event with ``payload`` is published under: its type's, or more words
        after it that a consumer may bind to (a topic exchange: ``<Type>.v<N>.#`` receives them all)."""
        return cls.routing_key()


E = TypeVar("E", bound=IntegrationEvent)


class EventEnvelope(Contract):
    """Metadata around a payload; consumers dedupe on ``event_id`` and route on ``type``."""

    event_id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    occurred_at: datetime
    producer: str
    aggregate_id: str
    payload: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return f"{self.type}.v{self.version}"

    @property
    def topic(self) -> str:
        """The routing key to publish with (``IntegrationEvent.topic``); the type's if unknown here."""
        from flashline_contracts.events import EVENT_TYPES  # the events import this module

        kind = EVENT_TYPES.get(self.routing_key)
        return kind.topic(self.payload) if kind is not None else self.routing_key

    @classmethod
    def wrap(
        cls,
        event: IntegrationEvent,
        *,
        producer: str,
        aggregate_id: str | int,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> EventEnvelope:
        return cls(
            event_id=event_id or uuid.uuid4(),
            type=event.TYPE,
            version=event.VERSION,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            aggregate_id=str(aggregate_id),
            payload=event.model_dump(mode="json"),
        )

    def open(self, model: builtins.type[E]) -> E:
        """Validate the payload as ``model``; raises pydantic.ValidationError if it does not fit."""
        if (self.type, self.version) != (model.TYPE, model.VERSION):
            raise ValueError(f"envelope holds {self.routing_key}, not {model.routing_key()}")
        return model.model_validate(self.payload)
