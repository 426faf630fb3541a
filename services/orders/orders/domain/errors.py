"""Domain errors: data with a code; the API maps them to HTTP status at the edge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class OrdersError(Exception):
    code = "orders_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        """Fields a client needs besides ``detail`` (e.g. the current status of a 409)."""
        return {}


class OrderNotFound(OrdersError):
    """Unknown, or not visible to the caller: the two are indistinguishable on purpose."""

    code = "order_not_found"

    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class NotAllowed(OrdersError):
    """The caller may see the order but not do this to it."""

    code = "not_allowed"


class IllegalTransition(OrdersError):
    code = "illegal_transition"

    def __init__(self, order_id: int, current: str, wanted: str, why: str | None = None) -> None:
        super().__init__(why or f"order {order_id} is {current}; it cannot become {wanted}")
        self.order_id = order_id
        self.current = str(current)
        self.wanted = str(wanted)

    def extra(self) -> dict[str, Any]:
        return {"status": self.current}


class InvalidOrder(OrdersError):
    """The request breaks a rule (the detail says which)."""

    code = "invalid_order"


class UnknownProducts(OrdersError):
    """The catalog has not told us about these products (or they do not exist)."""

    code = "unknown_product"

    def __init__(self, product_ids: Iterable[int]) -> None:
        self.product_ids = sorted(set(product_ids))
        super().__init__(f"unknown product(s): {', '.join(map(str, self.product_ids))}")

    def extra(self) -> dict[str, Any]:
        return {"product_ids": self.product_ids}


class MixedCurrencies(OrdersError):
    code = "mixed_currencies"

    def __init__(self, currencies: Iterable[str]) -> None:
        self.currencies = sorted(set(currencies))
        super().__init__(f"one order cannot mix currencies ({', '.join(self.currencies)})")

    def extra(self) -> dict[str, Any]:
        return {"currencies": self.currencies}


class IdempotencyKeyReused(OrdersError):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used with a different request body")


class StreamOutOfStep(OrdersError):
    """An order's version and its channel's offset disagree: refuse rather than publish a lie."""

    code = "stream_out_of_step"
