"""Plain values shared by the model, its commands and its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StockStatus = Literal["in_stock", "low", "out", "upcoming"]
RejectionReason = Literal["insufficient_stock", "not_on_sale", "unknown_product"]


@dataclass(frozen=True, slots=True)
class Line:
    """Units of one product, as an order asks for them or a reservation holds them."""

    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Shortage:
    """Why one line of an order could not be reserved."""

    product_id: int
    requested: int
    available: int
    reason: RejectionReason
