"""Domain errors: data with a code; the API maps codes to HTTP status at the edge."""

from __future__ import annotations


class CatalogError(Exception):
    code = "catalog_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProductNotFound(CatalogError):
    code = "product_not_found"

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class DuplicateSku(CatalogError):
    code = "duplicate_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with sku {sku!r} already exists")
        self.sku = sku


class InvalidProduct(CatalogError):
    """A product field breaks a rule (the detail says which)."""

    code = "invalid_product"


class InvalidQuantity(CatalogError):
    code = "invalid_quantity"


class StreamOutOfStep(CatalogError):
    """A product's version and its stock channel's offset disagree: refuse rather than publish a lie."""

    code = "stream_out_of_step"
