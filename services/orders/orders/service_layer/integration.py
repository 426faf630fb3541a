"""Domain events -> what leaves the service: integration events and channel publications.

Written through the outbox in the unit of work's transaction, so they commit with the change or
not at all. The pure mapping is separate from the writing, so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flashline_contracts.channels import order_channel, tenant_channel, user_channel
from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced, OrderStatusChanged
from flashline_contracts.events.orders import OrderLine
from flashline_contracts.publications import OrderState, OrderSummary, StreamPosition
from flashline_messaging import outbox
from orders.domain.errors import StreamOutOfStep
from orders.domain.events import DomainEvent, OrderCreated, OrderSnapshot, StatusChanged
from orders.domain.values import Status


def integration_events(event: DomainEvent) -> list[IntegrationEvent]:
    """The contract events ``event`` becomes, in the order they must leave."""
    order = event.order
    match event:
        case OrderCreated():
            lines = tuple(
                OrderLine(product_id=line.product_id, quantity=line.quantity, unit_price_cents=line.unit_price_cents)
                for line in order.lines
            )
            placed = OrderPlaced(
                order_id=order.order_id,
                user_id=order.user_id,
                tenant_id=order.tenant_id,
                cart_id=order.cart_id,
                lines=lines,
                total_cents=order.total_cents,
                currency=order.currency,
            )
            return [placed]
        case StatusChanged():
            changed = OrderStatusChanged(
                order_id=order.order_id,
                user_id=order.user_id,
                tenant_id=order.tenant_id,
                cart_id=order.cart_id,
                status=order.status.value,
                previous_status=event.previous.value if event.previous else None,
                version=order.version,
                reason=order.reason,
                at=order.updated_at,
            )
            if order.status is Status.CANCELLED:
                return [changed, OrderCancelled(order_id=order.order_id, reason=order.reason)]
            if order.status is Status.EXPIRED:
                return [changed, OrderExpired(order_id=order.order_id)]
            return [changed]


def order_state(order: OrderSnapshot) -> OrderState:
    return OrderState(
        order_id=order.order_id,
        status=order.status.value,
        version=order.version,
        updated_at=order.updated_at,
        reason=order.reason,
    )


def order_summary(order: OrderSnapshot) -> OrderSummary:
    return OrderSummary(
        order_id=order.order_id,
        user_id=order.user_id,
        status=order.status.value,
        version=order.version,
        total_cents=order.total_cents,
        currency=order.currency,
        updated_at=order.updated_at,
        reason=order.reason,
    )


def summary_channels(order: OrderSnapshot) -> list[str]:
    """Where a status summary goes: the owner's personal channel and their company's desk."""
    channels = [user_channel(order.user_id)]
    if order.tenant_id is not None:
        channels.append(tenant_channel(order.tenant_id))
    return channels


def _data(state: OrderState | OrderSummary) -> dict[str, Any]:
    return state.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class OutboxWriter:
    """Writes a unit of work's domain events into the outbox of its session.

    Integration events ride along in the statement of the next channel publication
    (``publish_to_channel(..., events=...)``), so a status change costs one round trip per channel
    and none for its events; events with no publication after them are queued in one statement.
    The events keep their order among themselves, and so do the publications.
    """

    producer: str

    async def write(self, session: AsyncSession, changes: Sequence[DomainEvent]) -> dict[str, StreamPosition]:
        """Queue everything ``changes`` announce; returns the position of each channel published."""
        published: dict[str, StreamPosition] = {}
        pending: list[EventEnvelope] = []
        for event in changes:
            pending += [
                EventEnvelope.wrap(
                    contract,
                    producer=self.producer,
                    aggregate_id=event.order.order_id,
                    occurred_at=event.order.updated_at,
                )
                for contract in integration_events(event)
            ]
            if isinstance(event, StatusChanged):
                await self._publish(session, event.order, pending, published)
                pending = []
        await outbox.add_events(session, pending)
        return published

    @staticmethod
    async def _publish(
        session: AsyncSession,
        order: OrderSnapshot,
        events: Sequence[EventEnvelope],
        published: dict[str, StreamPosition],
    ) -> None:
        channel = order_channel(order.order_id)
        position = await outbox.publish_to_channel(session, channel, _data(order_state(order)))
        if position.offset != order.version:
            raise StreamOutOfStep(f"{channel} is at offset {position.offset}, the order at version {order.version}")
        published[channel] = position
        summary = _data(order_summary(order))
        channels = summary_channels(order)
        for n, summary_channel in enumerate(channels, start=1):
            published[summary_channel] = await outbox.publish_to_channel(
                session, summary_channel, summary, events=events if n == len(channels) else ()
            )
