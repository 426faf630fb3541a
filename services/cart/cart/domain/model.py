"""Carts and what they are priced from: the cart service's rules in plain Python.

A cart's ``version`` is the offset of its channel's latest publication: every change advances
it by exactly one, and the outbox checks that the channel agrees. Catalog facts (names, prices,
availability) are read models fed by the catalog's events; the cart never changes stock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cart.domain.errors import CartClosed, CartNotAccessible, CurrencyMismatch, InvalidQuantity, StaleCart

MAX_ID = 2**63 - 1  # product ids are Postgres bigints
CartStatus = Literal["open", "closed"]
StockStatus = Literal["in_stock", "low", "out", "upcoming"]


@dataclass(frozen=True, slots=True)
class Listing:
    """A product as the catalog last described it (``ProductChanged``)."""

    product_id: int
    name: str
    price_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A product's availability as of catalog stock ``version`` (``StockChanged``)."""

    product_id: int
    available: int
    status: StockStatus
    version: int


@dataclass(frozen=True, slots=True)
class Offer:
    """What a cart line is priced from: a listing and its availability (0 until a stock level arrives)."""

    product_id: int
    name: str
    price_cents: int
    currency: str
    available: int


@dataclass(frozen=True, slots=True)
class CartRules:
    max_quantity_per_line: int
    currency: str

    def check_quantity(self, quantity: int) -> int:
        if not 0 <= quantity <= self.max_quantity_per_line:
            raise InvalidQuantity(f"quantity must be between 0 and {self.max_quantity_per_line}, got {quantity}")
        return quantity

    def check_offer(self, offer: Offer) -> Offer:
        if offer.currency != self.currency:
            raise CurrencyMismatch(offer.product_id, offer.currency, self.currency)
        return offer


@dataclass(frozen=True, slots=True)
class Access:
    """The credentials a request brings: a user token's subject and/or a guest cart token."""

    user_id: str | None = None
    cart_token: str | None = None


def hash_token(token: str) -> str:
    """Only this is stored: a database leak does not hand out guest carts."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_short(quantity: int, available: int) -> bool:
    return quantity > available


@dataclass(eq=False)
class Cart:
    """A guest cart (``token_hash`` set) or a user's cart (``owner_id`` set); lines keep insertion order."""

    id: str
    owner_id: str | None
    token_hash: str | None
    status: CartStatus = "open"
    version: int = 0
    lines: dict[int, int] = field(default_factory=dict)
    epoch: str = ""  # the cart channel's epoch, filled in by reads

    @classmethod
    def for_guest(cls) -> tuple[Cart, str]:
        """A new guest cart and its token (handed out once, never stored in clear)."""
        token = secrets.token_urlsafe(32)
        return cls(id=new_cart_id(), owner_id=None, token_hash=hash_token(token)), token

    @classmethod
    def for_user(cls, user_id: str) -> Cart:
        return cls(id=new_cart_id(), owner_id=user_id, token_hash=None)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def authorize(self, access: Access) -> None:
        if self.owner_id is not None:
            if access.user_id != self.owner_id:
                raise CartNotAccessible()
            return
        token = access.cart_token
        if token is None or self.token_hash is None or not hmac.compare_digest(hash_token(token), self.token_hash):
            raise CartNotAccessible()

    def check_version(self, expected: int | None) -> None:
        """No ``expected`` means last write wins."""
        if expected is not None and expected != self.version:
            raise StaleCart(expected, self.version)

    def set_quantity(self, product_id: int, quantity: int, rules: CartRules) -> bool:
        """Set (or with 0, remove) a line; False when nothing changed."""
        self._check_open()
        rules.check_quantity(quantity)
        if self.lines.get(product_id, 0) == quantity:
            return False
        if quantity == 0:
            del self.lines[product_id]
        else:
            self.lines[product_id] = quantity
        return True

    def absorb(self, guest: Cart, offers: Mapping[int, Offer], rules: CartRules) -> None:
        """Merge a guest cart in and close it. Quantities add, capped by availability and the line
        maximum; a line of this cart is never reduced by the merge (the user put it there)."""
        self._check_open()
        guest._check_open()
        for product_id, theirs in guest.lines.items():
            offer = offers.get(product_id)
            cap = min(rules.max_quantity_per_line, offer.available if offer else 0)
            mine = self.lines.get(product_id, 0)
            merged = max(mine, min(mine + theirs, cap))
            if merged:
                self.lines[product_id] = merged
        guest.status = "closed"

    def empty(self) -> bool:
        """Remove every line (an order from this cart was confirmed); False if open and empty already."""
        if not self.is_open or not self.lines:
            return False
        self.lines.clear()
        return True

    def advance(self) -> int:
        """Take the next version: one per published change."""
        self.version += 1
        return self.version

    def _check_open(self) -> None:
        if not self.is_open:
            raise CartClosed()


def new_cart_id() -> str:
    """128 random bits: a cart id cannot be guessed (access still needs a token or the owner)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class PricedLine:
    product_id: int
    name: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int
    available: int
    short: bool


@dataclass(frozen=True, slots=True)
class PricedCart:
    """A cart as tabs see it. ``available`` and ``short`` are as of this version: availability
    changes that flip no line's ``short`` flag do not make a new version."""

    cart_id: str
    version: int
    status: CartStatus
    lines: tuple[PricedLine, ...]
    items: int
    subtotal_cents: int
    currency: str


def price(cart: Cart, offers: Mapping[int, Offer], currency: str) -> PricedCart:
    """Price every line from ``offers`` (which must cover them: lines only name known products)."""
    lines = []
    for product_id, quantity in cart.lines.items():
        offer = offers[product_id]
        lines.append(
            PricedLine(
                product_id=product_id,
                name=offer.name,
                unit_price_cents=offer.price_cents,
                quantity=quantity,
                line_total_cents=offer.price_cents * quantity,
                available=offer.available,
                short=is_short(quantity, offer.available),
            )
        )
    return PricedCart(
        cart_id=cart.id,
        version=cart.version,
        status=cart.status,
        lines=tuple(lines),
        items=sum(line.quantity for line in lines),
        subtotal_cents=sum(line.line_total_cents for line in lines),
        currency=currency,
    )
