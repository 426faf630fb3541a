"""Domain errors: data with a code; the API maps codes to HTTP status at the edge."""

from __future__ import annotations


class CartError(Exception):
    code = "cart_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CartNotAccessible(CartError):
    """Wrong or missing credentials, or no such cart: the same answer, so ids cannot be probed."""

    code = "cart_not_accessible"

    def __init__(self) -> None:
        super().__init__("cart not accessible")


class NoOpenCart(CartError):
    code = "no_open_cart"

    def __init__(self) -> None:
        super().__init__("you have no open cart")


class ProductNotFound(CartError):
    code = "product_not_found"

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class InvalidQuantity(CartError):
    code = "invalid_quantity"


class StaleCart(CartError):
    """``If-Match`` named a version the cart has moved past: reload and decide again."""

    code = "stale_version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"cart is at version {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class CartClosed(CartError):
    code = "cart_closed"

    def __init__(self) -> None:
        super().__init__("cart is closed (it was merged into a signed-in cart)")


class CurrencyMismatch(CartError):
    code = "currency_mismatch"

    def __init__(self, product_id: int, currency: str, cart_currency: str) -> None:
        super().__init__(f"product {product_id} is priced in {currency}; carts are in {cart_currency}")


class StreamOutOfStep(CartError):
    """A cart's version and its channel's offset disagree: refuse rather than publish a lie."""

    code = "stream_out_of_step"
