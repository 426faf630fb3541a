"""Domain events (past tense): they stay inside the service; integration.py maps them outward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orders.domain.values import Line, Status


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """An order as it stood right after a change (events never share the mutable aggregate)."""

    order_id: int
    user_id: str
    tenant_id: str | None
    cart_id: str | None
    status: Status
    version: int
    lines: tuple[Line, ...]
    total_cents: int
    currency: str
    updated_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class OrderCreated:
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Every status the order takes, its first (``pending``, no previous) included."""

    order: OrderSnapshot
    previous: Status | None


DomainEvent = OrderCreated | StatusChanged
