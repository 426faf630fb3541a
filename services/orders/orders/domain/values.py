"""Value objects the model, its events and its commands share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_ID = 2**63 - 1  # ids are Postgres bigints


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Line:
    """One priced line of an order: the price is the catalog's at the time it was placed."""

    product_id: int
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Item:
    """One line as a customer asks for it (unpriced)."""

    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the claims of a user token that matter to the rules."""

    user_id: str
    is_staff: bool = False
    tenant_id: str | None = None
