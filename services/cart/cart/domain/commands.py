"""Commands: what the entrypoints ask the cart service to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cart.domain.model import Access, Listing, StockLevel


@dataclass(frozen=True, slots=True)
class CreateCart:
    """A guest cart when ``user_id`` is None, else the user's open cart (made if missing)."""

    user_id: str | None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetItem:
    """Set a line's quantity (0 removes it); ``if_match`` makes it conditional on the version."""

    cart_id: str
    product_id: int
    quantity: int
    access: Access
    if_match: int | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class MergeGuestCart:
    guest_cart_id: str
    user_id: str
    cart_token: str | None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordProduct:
    listing: Listing
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class RecordStock:
    level: StockLevel


@dataclass(frozen=True, slots=True)
class ForgetIdleGuestCarts:
    """Delete at most ``batch`` guest carts that nothing has changed since ``idle_since``."""

    idle_since: datetime
    batch: int


@dataclass(frozen=True, slots=True)
class EmptyOrderedCart:
    """An order placed from ``cart_id`` by ``user_id`` was confirmed."""

    cart_id: str
    user_id: str
