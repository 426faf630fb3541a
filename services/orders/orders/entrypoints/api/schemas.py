"""Request and response bodies of the orders API (pydantic); money in integer cents, times UTC."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from flashline_contracts.publications import StreamPosition
from orders.domain.model import Order
from orders.domain.pricing import MAX_CART_ID, MAX_LINES, MAX_QUANTITY
from orders.domain.values import MAX_ID, Item, Status


class ItemIn(BaseModel):
    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)

    def to_item(self) -> Item:
        return Item(self.product_id, self.quantity)


class PlaceOrderIn(BaseModel):
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_LINES)
    cart_id: str | None = Field(None, min_length=1, max_length=MAX_CART_ID)


class StatusIn(BaseModel):
    status: Status = Field(description="packed, shipped or delivered")


class CancelIn(BaseModel):
    reason: str | None = Field(None, min_length=1, max_length=200)


class LineOut(BaseModel):
    product_id: int
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class HistoryOut(BaseModel):
    version: int
    status: Status
    at: datetime
    reason: str | None


class OrderSummaryOut(BaseModel):
    id: int
    user_id: str
    tenant_id: str | None
    cart_id: str | None
    status: Status
    version: int
    items: list[LineOut]
    total_cents: int
    currency: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    payment_due_at: datetime | None

    @classmethod
    def fields_of(cls, order: Order) -> dict[str, object]:
        return {
            "id": order.id,
            "user_id": order.user_id,
            "tenant_id": order.tenant_id,
            "cart_id": order.cart_id,
            "status": order.status,
            "version": order.version,
            "items": [
                LineOut(
                    product_id=line.product_id,
                    quantity=line.quantity,
                    unit_price_cents=line.unit_price_cents,
                    line_total_cents=line.total_cents,
                )
                for line in order.lines
            ],
            "total_cents": order.total_cents,
            "currency": order.currency,
            "reason": order.reason,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            "payment_due_at": order.payment_due_at,
        }

    @classmethod
    def of(cls, order: Order) -> OrderSummaryOut:
        return cls.model_validate(cls.fields_of(order))


class OrderOut(OrderSummaryOut):
    """An order with its history and the position of ``order:{id}`` (offset == version)."""

    history: list[HistoryOut]
    stream: StreamPosition

    @classmethod
    def with_stream(cls, order: Order, stream: StreamPosition) -> OrderOut:
        history = [HistoryOut(version=h.version, status=h.status, at=h.at, reason=h.reason) for h in order.history]
        return cls.model_validate({**cls.fields_of(order), "history": history, "stream": stream})


class OrderPageOut(BaseModel):
    """Newest first; ``stream`` is the position of the channel whose summaries keep it current."""

    items: list[OrderSummaryOut]
    next_cursor: str | None
    stream: StreamPosition


class GrantOut(BaseModel):
    channel: str
    token: str
    expires_at: datetime
