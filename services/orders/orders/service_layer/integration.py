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
class _Publication:
    channel: str
    data: dict[str, Any]
    version: int | None  # on ``order:{id}``: the order's version, which the offset must equal


def _publications(changes: Sequence[DomainEvent]) -> list[_Publication]:
    """The status changes' publications by channel name; a channel's keep their order (stable sort)."""
    found: list[_Publication] = []
    for event in changes:
        if isinstance(event, StatusChanged):
            order = event.order
            found.append(_Publication(order_channel(order.order_id), _data(order_state(order)), order.version))
            summary = _data(order_summary(order))
            found += [_Publication(channel, summary, None) for channel in summary_channels(order)]
    return sorted(found, key=lambda publication: publication.channel)


@dataclass(frozen=True, slots=True)
class OutboxWriter:
    """Writes a unit of work's domain events into the outbox of its session.

    Everything leaves in one statement (``outbox.publish_to_channels``): the publications, by
    channel name whichever orders they are for, then the integration events in their order; with
    nothing to publish, the events take one statement of their own. The statement locks the
    channels' rows in name order: after the order rows (locked first, by id) that is the one lock
    order of every transaction here, so no two wait on each other in a cycle.
    """

    producer: str

    async def write(self, session: AsyncSession, changes: Sequence[DomainEvent]) -> dict[str, StreamPosition]:
        """Queue everything ``changes`` announce; returns the position of each channel published."""
        events = [
            EventEnvelope.wrap(
                contract, producer=self.producer, aggregate_id=event.order.order_id, occurred_at=event.order.updated_at
            )
            for event in changes
            for contract in integration_events(event)
        ]
        publications = _publications(changes)
        if not publications:
            await outbox.add_events(session, events)
            return {}
        positions = await outbox.publish_to_channels(
            session, [outbox.Publication(p.channel, p.data) for p in publications], events=events
        )
        published: dict[str, StreamPosition] = {}
        for publication, position in zip(publications, positions, strict=True):
            if publication.version is not None and position.offset != publication.version:
                raise StreamOutOfStep(
                    f"{publication.channel} is at offset {position.offset}, the order at version {publication.version}"
                )
            published[publication.channel] = position
        return published
