"""Products and their stock: the catalog's rules in plain Python.

The rules of stock: when a product is on sale, what its status is, how an order's lines are
merged and ordered, which orders of a batch get their units (``allocate``, decided on rows the
database has locked) and why an order was turned down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from catalog.domain import events
from catalog.domain.errors import InvalidProduct, InvalidQuantity
from catalog.domain.values import Line, RejectionReason, Shortage, StockStatus

MAX_ID = 2**63 - 1  # product and order ids are Postgres bigints
MAX_QUANTITY = 1_000_000_000  # per line, per restock and per product at creation
MAX_PRICE_CENTS = 10**12
MAX_NAME_LENGTH = 200
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

# Most telling first: an order naming an unknown product is wrong, one too early is premature.
_REASON_PRIORITY: tuple[RejectionReason, ...] = ("unknown_product", "not_on_sale", "insufficient_stock")


def stock_status(available: int, sale_starts_at: datetime | None, *, now: datetime, low_threshold: int) -> StockStatus:
    if sale_starts_at is not None and now < sale_starts_at:
        return "upcoming"
    if available <= 0:
        return "out"
    if available <= low_threshold:
        return "low"
    return "in_stock"


def check_quantity(quantity: int) -> int:
    if not 0 < quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")
    return quantity


def check_aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.utcoffset() is None:
        raise InvalidProduct("sale_starts_at must carry a time zone (e.g. 2030-01-01T10:00:00Z)")
    return moment


@dataclass(frozen=True, slots=True)
class StockLevel:
    """What watchers of ``stock:{product_id}`` see, at one version."""

    product_id: int
    available: int
    version: int
    sale_starts_at: datetime | None = None

    def on_sale(self, now: datetime) -> bool:
        return self.sale_starts_at is None or self.sale_starts_at <= now

    def shortage(self, quantity: int, now: datetime) -> Shortage | None:
        """The reason ``quantity`` units cannot be taken now, or None if they can."""
        if not self.on_sale(now):
            return Shortage(self.product_id, quantity, self.available, "not_on_sale")
        if self.available < quantity:
            return Shortage(self.product_id, quantity, self.available, "insufficient_stock")
        return None

    def changed(self) -> events.StockLevelChanged:
        return events.StockLevelChanged(self.product_id, self.available, self.version, self.sale_starts_at)


def merge_lines(lines: Iterable[Line]) -> tuple[Line, ...]:
    """One line per product, in product-id order: the order every reservation locks rows in,
    so two orders sharing products can never deadlock."""
    totals: dict[int, int] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return tuple(Line(product_id, quantity) for product_id, quantity in sorted(totals.items()))


def impossible_lines(lines: Iterable[Line]) -> tuple[Shortage, ...]:
    """Lines no stock could ever satisfy (ids or quantities out of range): rejected without a query."""
    short = []
    for line in lines:
        if not 0 < line.product_id <= MAX_ID:
            short.append(Shortage(line.product_id, line.quantity, 0, "unknown_product"))
        elif not 0 < line.quantity <= MAX_QUANTITY:
            short.append(Shortage(line.product_id, line.quantity, 0, "insufficient_stock"))
    return tuple(short)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What a batch of orders does to stock: each order's decision, in the batch's order, and the
    new level of every product whose stock moved (in id order)."""

    decisions: tuple[events.OrderReserved | events.OrderRejected, ...]
    levels: tuple[StockLevel, ...]


def allocate(
    orders: Iterable[tuple[int, Iterable[Line]]], levels: Mapping[int, StockLevel], *, now: datetime
) -> Allocation:
    """Decide orders first come, first served against ``levels`` (locked until commit).

    An order takes every line or nothing; a rejected order names each of its short lines, judged
    on what the orders before it left. A product gets one new version however many orders of
    the batch took from it: one stock publication per committed change, so watchers of a hot
    product are not sent every unit of a sale that commits hundreds of units a second.
    """
    left = {product_id: level.available for product_id, level in levels.items()}
    decisions: list[events.OrderReserved | events.OrderRejected] = []
    for order_id, lines in orders:
        merged = merge_lines(lines)
        short = impossible_lines(merged) or tuple(
            found for line in merged if (found := _shortage(line, levels.get(line.product_id), left, now)) is not None
        )
        if short:
            decisions.append(events.OrderRejected(order_id, rejection_reason(short), short))
            continue
        for line in merged:
            left[line.product_id] -= line.quantity
        decisions.append(events.OrderReserved(order_id, merged))
    moved = tuple(
        replace(levels[product_id], available=left[product_id], version=levels[product_id].version + 1)
        for product_id in sorted(levels)
        if left[product_id] != levels[product_id].available
    )
    return Allocation(tuple(decisions), moved)


def _shortage(line: Line, level: StockLevel | None, left: Mapping[int, int], now: datetime) -> Shortage | None:
    if level is None:
        return Shortage(line.product_id, line.quantity, 0, "unknown_product")
    return replace(level, available=left[line.product_id]).shortage(line.quantity, now)


def rejection_reason(shortages: Iterable[Shortage]) -> RejectionReason:
    reasons = {s.reason for s in shortages}
    return next((r for r in _REASON_PRIORITY if r in reasons), "insufficient_stock")


@dataclass(frozen=True, slots=True)
class NewProduct:
    """A validated product that has no id yet."""

    sku: str
    name: str
    price_cents: int
    currency: str
    available: int
    sale_starts_at: datetime | None
    sale_announced: bool

    @classmethod
    def create(
        cls,
        *,
        sku: str,
        name: str,
        price_cents: int,
        currency: str,
        stock: int,
        sale_starts_at: datetime | None,
        now: datetime,
    ) -> NewProduct:
        if not re.match(SKU_PATTERN, sku):
            raise InvalidProduct("sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if not re.match(CURRENCY_PATTERN, currency):
            raise InvalidProduct("currency must be an ISO 4217 code in capitals, e.g. EUR")
        if not 0 <= stock <= MAX_QUANTITY:
            raise InvalidQuantity(f"stock must be between 0 and {MAX_QUANTITY}")
        check_aware(sale_starts_at)
        return cls(
            sku=sku,
            name=_check_name(name),
            price_cents=_check_price(price_cents),
            currency=currency,
            available=stock,
            sale_starts_at=sale_starts_at,
            # Announced means: the stock channel already shows it on sale (nothing left to schedule).
            sale_announced=sale_starts_at is None or sale_starts_at <= now,
        )


@dataclass(frozen=True, slots=True)
class Product:
    """A product as stored; ``version`` is the offset of its stock channel's latest publication."""

    id: int
    sku: str
    name: str
    price_cents: int
    currency: str
    available: int
    version: int
    sale_starts_at: datetime | None
    sale_announced: bool
    stream_epoch: str = ""  # the stock channel's epoch, filled in by reads

    @property
    def stock(self) -> StockLevel:
        return StockLevel(self.id, self.available, self.version, self.sale_starts_at)

    def details(self) -> events.ProductDetailsChanged:
        return events.ProductDetailsChanged(
            self.id, self.sku, self.name, self.price_cents, self.currency, self.sale_starts_at
        )

    def creation_events(self) -> tuple[events.DomainEvent, ...]:
        return self.details(), self.stock.changed()

    def revise(
        self, *, name: str, price_cents: int, sale_starts_at: datetime | None, now: datetime
    ) -> tuple[Product, tuple[events.DomainEvent, ...]]:
        """The product with new details, and the events the change causes (none if nothing changed).

        A new sale start changes what watchers see (upcoming or not), so it takes a stock version.
        """
        check_aware(sale_starts_at)
        revised = replace(self, name=_check_name(name), price_cents=_check_price(price_cents))
        rescheduled = sale_starts_at != self.sale_starts_at
        if rescheduled:
            revised = replace(
                revised,
                sale_starts_at=sale_starts_at,
                sale_announced=sale_starts_at is None or sale_starts_at <= now,
                version=self.version + 1,
            )
        if revised == self:
            return self, ()
        changes: tuple[events.DomainEvent, ...] = (revised.details(),)
        return revised, changes + ((revised.stock.changed(),) if rescheduled else ())


def _check_name(name: str) -> str:
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InvalidProduct(f"name must be 1-{MAX_NAME_LENGTH} characters")
    return name


def _check_price(price_cents: int) -> int:
    if not 0 <= price_cents <= MAX_PRICE_CENTS:
        raise InvalidProduct(f"price_cents must be between 0 and {MAX_PRICE_CENTS}")
    return price_cents
