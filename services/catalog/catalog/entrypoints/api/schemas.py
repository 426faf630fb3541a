"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from catalog.domain.model import (
    CURRENCY_PATTERN,
    MAX_NAME_LENGTH,
    MAX_PRICE_CENTS,
    MAX_QUANTITY,
    SKU_PATTERN,
    Product,
)
from catalog.domain.values import StockStatus


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductCreate(_Body):
    sku: str = Field(pattern=SKU_PATTERN)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    price_cents: int = Field(ge=0, le=MAX_PRICE_CENTS)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    stock: int = Field(ge=0, le=MAX_QUANTITY)
    sale_starts_at: AwareDatetime | None = None


class ProductUpdate(_Body):
    """Name and price; ``sale_starts_at`` changes only if present (null removes the schedule)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    price_cents: int = Field(ge=0, le=MAX_PRICE_CENTS)
    sale_starts_at: AwareDatetime | None = None


class RestockRequest(_Body):
    quantity: int = Field(gt=0, le=MAX_QUANTITY)


class Stream(BaseModel):
    """Where the product's ``stock:{id}`` channel stands: subscribe from here (SDK ``get_state``)."""

    offset: int
    epoch: str


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    price_cents: int
    currency: str
    available: int
    status: StockStatus
    version: int
    sale_starts_at: datetime | None
    stream: Stream

    @classmethod
    def of(cls, product: Product, status: StockStatus) -> ProductOut:
        return cls(
            id=product.id,
            sku=product.sku,
            name=product.name,
            price_cents=product.price_cents,
            currency=product.currency,
            available=product.available,
            status=status,
            version=product.version,
            sale_starts_at=product.sale_starts_at,
            stream=Stream(offset=product.version, epoch=product.stream_epoch),
        )


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = None
