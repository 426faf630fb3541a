"""Reads for the API, and the cart representation handlers return after a change.

A read prices the cart with the availability known now; a publication carries the availability
known when it was made (see ``PricedCart``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cart.domain.errors import CartNotAccessible, NoOpenCart
from cart.domain.model import Access, Cart, CartRules, PricedCart, price
from cart.service_layer.unit_of_work import UnitOfWork
from flashline_contracts.publications import StreamPosition


@dataclass(frozen=True, slots=True)
class CartView:
    """A priced cart and its channel's position: load it, then subscribe from ``stream``."""

    cart: PricedCart
    stream: StreamPosition
    origin_client: str | None = None


async def accessible_cart(uow: UnitOfWork, cart_id: str, access: Access, *, for_update: bool = False) -> Cart:
    """The cart if ``access`` opens it; an unknown id fails the same way as a wrong token."""
    found = await uow.carts.get(cart_id, for_update=for_update)
    if found is None:
        raise CartNotAccessible()
    found.authorize(access)
    return found


async def priced(uow: UnitOfWork, cart: Cart, rules: CartRules) -> CartView:
    offers = await uow.catalog.offers(list(cart.lines))
    return CartView(price(cart, offers, rules.currency), StreamPosition(offset=cart.version, epoch=cart.epoch))


async def cart(uow: UnitOfWork, cart_id: str, access: Access, rules: CartRules) -> CartView:
    async with uow:
        return await priced(uow, await accessible_cart(uow, cart_id, access), rules)


async def grant_subject(uow: UnitOfWork, cart_id: str, access: Access) -> str:
    """Whom a subscription grant for the cart is for: its owner, or "" (an anonymous connection) for a guest cart."""
    async with uow:
        return (await accessible_cart(uow, cart_id, access)).owner_id or ""


async def open_cart_of(uow: UnitOfWork, user_id: str, rules: CartRules) -> CartView:
    async with uow:
        found = await uow.carts.open_cart_of(user_id)
        if found is None:
            raise NoOpenCart()
        return await priced(uow, found, rules)
