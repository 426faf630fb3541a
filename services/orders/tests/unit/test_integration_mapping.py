"""Domain events -> contract events and channel data, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced, OrderStatusChanged
from orders.domain.events import OrderCreated, OrderSnapshot, StatusChanged
from orders.domain.values import Line, Status
from orders.service_layer.integration import integration_events, order_state, order_summary, summary_channels

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
