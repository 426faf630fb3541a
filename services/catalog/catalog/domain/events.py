"""Domain events: facts inside the catalog. ``integration.py`` turns them into bus events and pushes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.domain.values import Line, RejectionReason, Shortage


@dataclass(frozen=True, slots=True)
class ProductDetailsChanged:
    """A product was created, renamed, repriced or rescheduled."""

    product_id: int
    sku: str
    name: str
    price_cents: int
    currency: str
    sale_starts_at: datetime | None


@dataclass(frozen=True, slots=True)
class StockLevelChanged:
    """The stock state watchers see changed; ``version`` is its stock channel's next offset."""

    product_id: int
    available: int
    version: int
    sale_starts_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderReserved:
    order_id: int
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: int
    reason: RejectionReason
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True, slots=True)
class OrderReleased:
    order_id: int
    lines: tuple[Line, ...]


DomainEvent = ProductDetailsChanged | StockLevelChanged | OrderReserved | OrderRejected | OrderReleased
