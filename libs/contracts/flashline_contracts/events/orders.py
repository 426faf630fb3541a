"""Events the orders service produces."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from flashline_contracts.base import Contract
from flashline_contracts.envelope import IntegrationEvent

OrderStatus = Literal[
    "pending",
    "confirmed",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "rejected",
    "cancelled",
    "expired",
]


class OrderLine(Contract):
    product_id: int
    quantity: int = Field(gt=0)
    unit_price_cents: int = Field(ge=0)


class OrderPlaced(IntegrationEvent):
    """A customer placed an order; the catalog reserves its lines."""

    TYPE: ClassVar[str] = "OrderPlaced"
    order_id: int
    user_id: str
    tenant_id: str | None = None
    cart_id: str | None = None
    lines: tuple[OrderLine, ...]
    total_cents: int = Field(ge=0)
    currency: str


class OrderStatusChanged(IntegrationEvent):
    """Any transition of an order's status machine, with the version it produced."""

    TYPE: ClassVar[str] = "OrderStatusChanged"
    order_id: int
    user_id: str
    tenant_id: str | None = None
    cart_id: str | None = None
    status: OrderStatus
    previous_status: OrderStatus | None = None
    version: int = Field(ge=1)
    reason: str | None = None
    at: datetime

    @classmethod
    def topic(cls, payload: Mapping[str, Any]) -> str:
        """``OrderStatusChanged.v1.<status>.<cart|direct>``: the cart binds to confirmations of cart orders only.

        In a flash sale most orders skip the cart, and each placement and confirmation would
        otherwise be a message the cart reads only to drop. ``OrderStatusChanged.v1.#`` binds all.
        """
        return f"{cls.routing_key()}.{payload.get('status')}.{'cart' if payload.get('cart_id') else 'direct'}"


class OrderCancelled(IntegrationEvent):
    """The order was cancelled; the catalog releases its reservation (a no-op if none)."""

    TYPE: ClassVar[str] = "OrderCancelled"
    order_id: int
    reason: str | None = None


class OrderExpired(IntegrationEvent):
    """A confirmed order was not paid in time; the catalog releases its reservation."""

    TYPE: ClassVar[str] = "OrderExpired"
    order_id: int
