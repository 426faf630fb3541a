"""Domain events: facts inside the cart service. ``integration.py`` turns them into publications."""

from __future__ import annotations

from dataclasses import dataclass

from cart.domain.model import PricedCart


@dataclass(frozen=True, slots=True)
class CartChanged:
    """A cart reached a new version; every tab but ``origin_client`` must be shown it."""

    cart: PricedCart
    origin_client: str | None


DomainEvent = CartChanged
