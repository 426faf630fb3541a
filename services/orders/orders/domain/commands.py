"""Commands (imperative): what entrypoints ask the service layer to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from orders.domain.values import Actor, Item, Status


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    actor: Actor
    idempotency_key: str
    items: tuple[Item, ...]
    cart_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    """The catalog reserved every line (``StockReserved``)."""

    order_id: int
    payment_window: timedelta


@dataclass(frozen=True, slots=True)
class RejectOrder:
    """The catalog could not reserve the order (``StockRejected``)."""

    order_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PayOrder:
    actor: Actor
    order_id: int


@dataclass(frozen=True, slots=True)
class AdvanceOrder:
    """The warehouse moves a paid order on: packed, shipped, delivered."""

    actor: Actor
    order_id: int
    status: Status


@dataclass(frozen=True, slots=True)
class CancelOrder:
    actor: Actor
    order_id: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExpireOverdueOrders:
    batch_size: int


@dataclass(frozen=True, slots=True)
class RecordProduct:
    """The catalog's ``ProductChanged``: what orders price lines with."""

    product_id: int
    name: str
    price_cents: int
    currency: str
    changed_at: datetime
