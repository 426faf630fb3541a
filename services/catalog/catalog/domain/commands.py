"""Commands: what the entrypoints ask the catalog to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.domain.values import Line


@dataclass(frozen=True, slots=True)
class CreateProduct:
    sku: str
    name: str
    price_cents: int
    currency: str
    stock: int
    sale_starts_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    """New name and price; the sale start changes only when ``change_sale_start`` is set."""

    product_id: int
    name: str
    price_cents: int
    sale_starts_at: datetime | None = None
    change_sale_start: bool = False


@dataclass(frozen=True, slots=True)
class Restock:
    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class ReserveOrder:
    order_id: int
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class ReleaseOrder:
    order_id: int


@dataclass(frozen=True, slots=True)
class AnnounceDueSales:
    limit: int = 100
