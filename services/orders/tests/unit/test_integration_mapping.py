"""Domain events -> contract events and channel data, and the order they are written in, without a database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced, OrderStatusChanged
from flashline_contracts.publications import StreamPosition
from flashline_messaging import outbox
from orders.domain.errors import StreamOutOfStep
from orders.domain.events import OrderCreated, OrderSnapshot, StatusChanged
from orders.domain.values import Line, Status
from orders.service_layer.integration import (
    OutboxWriter,
    integration_events,
    order_state,
    order_summary,
    summary_channels,
)

AT = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ORDER = OrderSnapshot(
    order_id=42,
    user_id="alice",
    tenant_id="acme",
    cart_id="cart-9",
    status=Status.PENDING,
    version=1,
    lines=(Line(1, 2, 500),),
    total_cents=1000,
    currency="EUR",
    updated_at=AT,
    reason=None,
)


def test_creation_becomes_order_placed_with_priced_lines() -> None:
    [placed] = integration_events(OrderCreated(ORDER))
    assert isinstance(placed, OrderPlaced)
    assert (placed.order_id, placed.user_id, placed.tenant_id, placed.cart_id) == (42, "alice", "acme", "cart-9")
    assert [(line.product_id, line.quantity, line.unit_price_cents) for line in placed.lines] == [(1, 2, 500)]
    assert (placed.total_cents, placed.currency) == (1000, "EUR")
    envelope = EventEnvelope.wrap(placed, producer="orders", aggregate_id=42)
    assert envelope.open(OrderPlaced) == placed  # survives the wire


def test_every_status_change_carries_who_where_and_which_version() -> None:
    confirmed = replace(ORDER, status=Status.CONFIRMED, version=2)
    [changed] = integration_events(StatusChanged(confirmed, previous=Status.PENDING))
    assert isinstance(changed, OrderStatusChanged)
    assert (changed.status, changed.previous_status, changed.version, changed.at) == ("confirmed", "pending", 2, AT)
    assert (changed.user_id, changed.tenant_id, changed.cart_id) == ("alice", "acme", "cart-9")
    [first] = integration_events(StatusChanged(ORDER, previous=None))
    assert isinstance(first, OrderStatusChanged) and first.previous_status is None


def test_cancellation_and_expiry_also_tell_the_catalog_to_release() -> None:
    cancelled = replace(ORDER, status=Status.CANCELLED, version=3, reason="cancelled by staff")
    changed, release = integration_events(StatusChanged(cancelled, previous=Status.CONFIRMED))
    assert isinstance(changed, OrderStatusChanged)
    assert isinstance(release, OrderCancelled) and (release.order_id, release.reason) == (42, "cancelled by staff")
    expired = replace(ORDER, status=Status.EXPIRED, version=3, reason="payment window elapsed")
    _, release = integration_events(StatusChanged(expired, previous=Status.CONFIRMED))
    assert isinstance(release, OrderExpired) and release.order_id == 42


def test_channel_data_is_the_full_state_and_summaries_reach_user_and_tenant() -> None:
    rejected = replace(ORDER, status=Status.REJECTED, version=2, reason="insufficient_stock")
    assert order_state(rejected).model_dump(mode="json") == {
        "order_id": 42,
        "status": "rejected",
        "version": 2,
        "updated_at": "2030-01-01T12:00:00Z",
        "reason": "insufficient_stock",
    }
    summary = order_summary(rejected)
    assert (summary.kind, summary.user_id, summary.total_cents, summary.version) == ("order_status", "alice", 1000, 2)
    assert summary_channels(rejected) == ["user#alice", "tenant:acme"]
    assert summary_channels(replace(rejected, tenant_id=None)) == ["user#alice"]


class RecordingOutbox:
    """Stands in for ``flashline_messaging.outbox``: each statement the writer sends, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **offsets: int) -> None:
        self.offsets = dict(offsets)
        # (the channels published, [(event, order)])
        self.statements: list[tuple[list[str], list[tuple[str, int]]]] = []
        monkeypatch.setattr(outbox, "publish_to_channels", self.publish_to_channels)
        monkeypatch.setattr(outbox, "add_events", self.add_events)

    async def publish_to_channels(
        self, session: AsyncSession, publications: Sequence[outbox.Publication], *, events: Sequence[EventEnvelope] = ()
    ) -> list[StreamPosition]:
        positions = []
        for publication in publications:
            self.offsets[publication.channel] = self.offsets.get(publication.channel, 0) + 1
            positions.append(StreamPosition(offset=self.offsets[publication.channel], epoch="e"))
        self.statements.append(([p.channel for p in publications], _named(events)))
        return positions

    async def add_events(self, session: AsyncSession, envelopes: Sequence[EventEnvelope]) -> None:
        self.statements.append(([], _named(envelopes)))


def _named(envelopes: Sequence[EventEnvelope]) -> list[tuple[str, int]]:
    return [(e.routing_key, int(e.aggregate_id)) for e in envelopes]


async def test_a_batch_publishes_by_channel_name_then_its_events_in_order_in_one_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = RecordingOutbox(monkeypatch, **{"order:42": 1, "order:7": 1})
    zoe = replace(ORDER, order_id=42, user_id="zoe", tenant_id=None, status=Status.CONFIRMED, version=2)
    alice = replace(ORDER, order_id=7, status=Status.CONFIRMED, version=2)
    paid = replace(alice, status=Status.PAID, version=3)  # a second change of order 7 in the same commit
    changes = [
        StatusChanged(zoe, Status.PENDING),
        StatusChanged(alice, Status.PENDING),
        StatusChanged(paid, Status.CONFIRMED),
    ]
    published = await OutboxWriter("orders").write(AsyncSession(), changes)
    channels = ["order:42", "order:7", "order:7", "tenant:acme", "tenant:acme", "user#alice", "user#alice", "user#zoe"]
    assert recorded.statements == [(channels, [("OrderStatusChanged.v1", order) for order in (42, 7, 7)])]
    assert (published["order:7"].offset, published["user#alice"].offset, published["user#zoe"].offset) == (3, 2, 1)


async def test_events_with_no_publication_are_queued_alone_and_an_offset_out_of_step_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = RecordingOutbox(monkeypatch, **{"order:42": 5})
    writer = OutboxWriter("orders")
    assert await writer.write(AsyncSession(), [OrderCreated(ORDER)]) == {}
    assert recorded.statements == [([], [("OrderPlaced.v1", 42)])]
    with pytest.raises(StreamOutOfStep):
        await writer.write(AsyncSession(), [StatusChanged(replace(ORDER, version=2), Status.PENDING)])
