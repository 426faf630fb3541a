"""Domain events -> contract events and stock channel data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from catalog.domain import events
from catalog.domain.values import Line, Shortage
from catalog.service_layer.integration import integration_event, stock_state
from flashline_contracts.events import ProductChanged, StockChanged, StockRejected, StockReleased, StockReserved

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_stock_state_carries_status_version_and_upcoming_start() -> None:
    starts = NOW + timedelta(minutes=1)
    upcoming = stock_state(events.StockLevelChanged(4, 9, 3, starts), now=NOW, low_threshold=5)
    assert upcoming.model_dump(mode="json", exclude_none=True) == {
        "product_id": 4,
        "available": 9,
        "status": "upcoming",
        "version": 3,
        "sale_starts_at": "2030-01-01T12:01:00Z",
    }
    assert stock_state(events.StockLevelChanged(4, 2, 4, None), now=NOW, low_threshold=5).status == "low"


def test_each_domain_event_maps_to_its_contract_and_aggregate() -> None:
    mapped = [
        integration_event(e, now=NOW, low_threshold=5)
        for e in (
            events.StockLevelChanged(4, 0, 7, None),
            events.ProductDetailsChanged(4, "S", "N", 100, "EUR", None),
            events.OrderReserved(9, (Line(4, 1),)),
            events.OrderReleased(9, (Line(4, 1),)),
            events.OrderRejected(9, "not_on_sale", (Shortage(4, 1, 3, "not_on_sale"),)),
        )
    ]
    assert mapped[0] == (StockChanged(product_id=4, available=0, status="out", version=7), 4)
    assert isinstance(mapped[1][0], ProductChanged) and mapped[1][1] == 4
    assert isinstance(mapped[2][0], StockReserved) and mapped[2][0].lines[0].quantity == 1 and mapped[2][1] == 9
    assert isinstance(mapped[3][0], StockReleased) and mapped[3][1] == 9
    rejected = mapped[4][0]
    assert isinstance(rejected, StockRejected)
    assert rejected.reason == "not_on_sale" and rejected.short_lines[0].available == 3
