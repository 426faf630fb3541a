"""Events the catalog service produces."""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from flashline_contracts.base import Contract
from flashline_contracts.envelope import IntegrationEvent

StockStatus = Literal["in_stock", "low", "out", "upcoming"]
RejectionReason = Literal["insufficient_stock", "not_on_sale", "unknown_product"]


class ProductChanged(IntegrationEvent):
    """A product was created or its name, price or sale start changed (read models follow it)."""

    TYPE: ClassVar[str] = "ProductChanged"
    product_id: int
    sku: str
    name: str
    price_cents: int = Field(ge=0)
    currency: str
    sale_starts_at: datetime | None = None


class StockChanged(IntegrationEvent):
    """The available count of a product changed; ``version`` orders the changes."""

    TYPE: ClassVar[str] = "StockChanged"
    product_id: int
    available: int = Field(ge=0)
    status: StockStatus
    version: int = Field(ge=1)


class ReservedLine(Contract):
    product_id: int
    quantity: int = Field(gt=0)


class ShortLine(Contract):
    product_id: int
    requested: int
    available: int
    reason: RejectionReason


class StockReserved(IntegrationEvent):
    """Every line of an order is reserved (all or nothing)."""

    TYPE: ClassVar[str] = "StockReserved"
    order_id: int
    lines: tuple[ReservedLine, ...]


class StockRejected(IntegrationEvent):
    """No line of the order was reserved; ``short_lines`` says which lines could not be."""

    TYPE: ClassVar[str] = "StockRejected"
    order_id: int
    reason: RejectionReason
    short_lines: tuple[ShortLine, ...] = ()


class StockReleased(IntegrationEvent):
    """A cancelled or expired order's reservation went back on the shelf."""

    TYPE: ClassVar[str] = "StockReleased"
    order_id: int
    lines: tuple[ReservedLine, ...]
