"""Domain events -> what leaves the service: stock channel publications and integration events.

Written through the outbox in the unit of work's transaction, so they commit with the change or
not at all. The pure mapping is separate from the writing, so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.domain import events
from catalog.domain.errors import StreamOutOfStep
from catalog.domain.model import stock_status
from catalog.domain.values import Line
from flashline_contracts.channels import stock_channel
from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_contracts.events.catalog import (
    ProductChanged,
    ReservedLine,
    ShortLine,
    StockChanged,
    StockRejected,
    StockReleased,
    StockReserved,
)
from flashline_contracts.publications import StockState
from flashline_messaging import outbox


def stock_state(event: events.StockLevelChanged, *, now: datetime, low_threshold: int) -> StockState:
    status = stock_status(event.available, event.sale_starts_at, now=now, low_threshold=low_threshold)
    return StockState(
        product_id=event.product_id,
        available=event.available,
        status=status,
        version=event.version,
        sale_starts_at=event.sale_starts_at,
    )


def integration_event(event: events.DomainEvent, *, now: datetime, low_threshold: int) -> tuple[IntegrationEvent, int]:
    """The contract event for ``event`` and its aggregate id (product or order)."""
    match event:
        case events.StockLevelChanged():
            state = stock_state(event, now=now, low_threshold=low_threshold)
            changed = StockChanged(
                product_id=state.product_id, available=state.available, status=state.status, version=state.version
            )
            return changed, event.product_id
        case events.ProductDetailsChanged():
            product = ProductChanged(
                product_id=event.product_id,
                sku=event.sku,
                name=event.name,
                price_cents=event.price_cents,
                currency=event.currency,
                sale_starts_at=event.sale_starts_at,
            )
            return product, event.product_id
        case events.OrderReserved():
            return StockReserved(order_id=event.order_id, lines=_lines(event.lines)), event.order_id
        case events.OrderReleased():
            return StockReleased(order_id=event.order_id, lines=_lines(event.lines)), event.order_id
        case events.OrderRejected():
            short = tuple(
                ShortLine(product_id=s.product_id, requested=s.requested, available=s.available, reason=s.reason)
                for s in event.shortages
            )
            return StockRejected(order_id=event.order_id, reason=event.reason, short_lines=short), event.order_id


def _lines(lines: Sequence[Line]) -> tuple[ReservedLine, ...]:
    return tuple(ReservedLine(product_id=line.product_id, quantity=line.quantity) for line in lines)


@dataclass(frozen=True, slots=True)
class OutboxWriter:
    """Writes a unit of work's domain events into the outbox of its session.

    Round trips are kept few because a reservation calls this while holding its product's row
    lock: one statement per stock publication, the integration events riding along with the last
    one (or one statement of their own when nothing is published).
    """

    producer: str
    low_stock_threshold: int
    clock: Callable[[], datetime]

    async def write(self, session: AsyncSession, changes: Sequence[events.DomainEvent]) -> None:
        now = self.clock()
        envelopes: list[EventEnvelope] = []
        for event in changes:
            contract, aggregate_id = integration_event(event, now=now, low_threshold=self.low_stock_threshold)
            envelopes.append(
                EventEnvelope.wrap(contract, producer=self.producer, aggregate_id=aggregate_id, occurred_at=now)
            )
        stock = [event for event in changes if isinstance(event, events.StockLevelChanged)]
        for i, event in enumerate(stock):
            await self._publish_stock(session, event, now, envelopes if i == len(stock) - 1 else ())
        if not stock:
            await outbox.add_events(session, envelopes)

    async def _publish_stock(
        self,
        session: AsyncSession,
        event: events.StockLevelChanged,
        now: datetime,
        envelopes: Sequence[EventEnvelope],
    ) -> None:
        state = stock_state(event, now=now, low_threshold=self.low_stock_threshold)
        data = state.model_dump(mode="json", exclude_none=True)
        position = await outbox.publish_to_channel(session, stock_channel(event.product_id), data, events=envelopes)
        if position.offset != event.version:
            raise StreamOutOfStep(
                f"stock:{event.product_id} is at offset {position.offset}, product at version {event.version}"
            )
