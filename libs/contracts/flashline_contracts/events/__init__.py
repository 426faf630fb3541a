"""Every integration event on the bus, by producer. ``EVENT_TYPES`` maps routing keys to models."""

from flashline_contracts.envelope import IntegrationEvent
from flashline_contracts.events.catalog import (
    ProductChanged,
    StockChanged,
    StockRejected,
    StockReleased,
    StockReserved,
)
from flashline_contracts.events.orders import (
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OrderStatusChanged,
)

ALL_EVENTS: tuple[type[IntegrationEvent], ...] = (
    ProductChanged,
    StockChanged,
    StockReserved,
    StockRejected,
    StockReleased,
    OrderPlaced,
    OrderStatusChanged,
    OrderCancelled,
    OrderExpired,
)
EVENT_TYPES: dict[str, type[IntegrationEvent]] = {e.routing_key(): e for e in ALL_EVENTS}

__all__ = [
    "ALL_EVENTS",
    "EVENT_TYPES",
    "OrderCancelled",
    "OrderExpired",
    "OrderPlaced",
    "OrderStatusChanged",
    "ProductChanged",
    "StockChanged",
    "StockRejected",
    "StockReleased",
    "StockReserved",
]
