"""What travels from producers to the gateway, and the state each channel publishes.

Every publication carries the channel's full state, so the latest one is a snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from flashline_contracts.base import Contract
from flashline_contracts.events.catalog import StockStatus
from flashline_contracts.events.orders import OrderStatus


class StreamPosition(Contract):
    """Where a channel's stream stands: what REST representations carry as ``stream``."""

    offset: int = Field(ge=0)
    epoch: str


class PushPublication(Contract):
    """One publication for one channel, as the producer's outbox relay puts it on the push log
    (alone, or with the others of a batch: ``flashline_contracts.batches``).

    ``offset`` is gapless and monotonic per channel, assigned in the producer's transaction;
    ``epoch`` is stable for the channel. ``exclude_client`` names a gateway client id that must
    not receive it (the tab that made the change). ``published_at`` is the commit-time clock of
    the producer, used to measure end-to-end latency.
    """

    channel: str
    offset: int = Field(ge=1)
    epoch: str = Field(min_length=1)
    data: dict[str, Any]
    exclude_client: str | None = None
    published_at: datetime


class StockState(Contract):
    """Data of ``stock:{product_id}``."""

    product_id: int
    available: int = Field(ge=0)
    status: StockStatus
    version: int
    sale_starts_at: datetime | None = None


class OrderState(Contract):
    """Data of ``order:{order_id}``."""

    order_id: int
    status: OrderStatus
    version: int
    updated_at: datetime
    reason: str | None = None


class OrderSummary(Contract):
    """Data of ``user#{user_id}`` and ``tenant:{tenant_id}``: one order's status change."""

    kind: Literal["order_status"] = "order_status"
    order_id: int
    user_id: str
    status: OrderStatus
    version: int
    total_cents: int
    currency: str
    updated_at: datetime
    reason: str | None = None


class CartLine(Contract):
    product_id: int
    name: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int
    available: int
    short: bool


class CartTotals(Contract):
    items: int
    subtotal_cents: int
    currency: str


class CartState(Contract):
    """Data of ``cart:{cart_id}``: the whole cart as ``GET /carts/{id}`` returned it at this version.

    A line's ``available`` is the stock when the version was published: the cart is republished
    when a line's ``short`` flag flips, not at every stock change (during a drop that would be a
    publication per cart per sale). Live counts come from the ``stock:`` channels, so a GET later
    at the same version may show a newer ``available`` with the same ``short`` flags.
    """

    cart_id: str
    version: int
    status: Literal["open", "closed"] = "open"
    items: tuple[CartLine, ...]
    totals: CartTotals
    origin_client: str | None = None
