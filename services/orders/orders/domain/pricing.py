"""Pricing an order from the catalog's read model: prices come from the catalog, never the client."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orders.domain.errors import InvalidOrder, MixedCurrencies, UnknownProducts
from orders.domain.values import MAX_ID, Item, Line

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_CART_ID = 200


@dataclass(frozen=True, slots=True)
class CatalogProduct:
    """What the catalog last told us about a product (``ProductChanged``), as of ``changed_at``."""

    product_id: int
    name: str
    price_cents: int
    currency: str
    changed_at: datetime


def check_items(items: Sequence[Item], cart_id: str | None) -> None:
    """Raise InvalidOrder for a request no catalog state could make valid."""
    if not items:
        raise InvalidOrder("items must hold at least one line")
    if len(items) > MAX_LINES:
        raise InvalidOrder(f"at most {MAX_LINES} lines per order")
    seen: set[int] = set()
    for item in items:
        if not 0 < item.product_id <= MAX_ID:
            raise InvalidOrder(f"product_id {item.product_id} is not a valid id")
        if not 0 < item.quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"quantity of product {item.product_id} must be between 1 and {MAX_QUANTITY}")
        if item.product_id in seen:
            raise InvalidOrder(f"product {item.product_id} appears twice; put the whole quantity on one line")
        seen.add(item.product_id)
    if cart_id is not None and not 0 < len(cart_id) <= MAX_CART_ID:
        raise InvalidOrder(f"cart_id must be 1 to {MAX_CART_ID} characters")


def price(items: Sequence[Item], catalog: Mapping[int, CatalogProduct]) -> tuple[tuple[Line, ...], str]:
    """The priced lines, in the order asked for, and their one currency."""
    unknown = [item.product_id for item in items if item.product_id not in catalog]
    if unknown:
        raise UnknownProducts(unknown)
    currencies = {catalog[item.product_id].currency for item in items}
    if len(currencies) != 1:
        raise MixedCurrencies(currencies)
    lines = tuple(Line(i.product_id, i.quantity, catalog[i.product_id].price_cents) for i in items)
    return lines, currencies.pop()


def fingerprint(items: Sequence[Item], cart_id: str | None) -> str:
    """A digest of the request's meaning: the same items in another order are the same request."""
    canonical = {"items": sorted((i.product_id, i.quantity) for i in items), "cart_id": cart_id}
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()
