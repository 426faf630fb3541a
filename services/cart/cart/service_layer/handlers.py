"""Use cases: plain async functions ``handler(cmd, uow, rules)``; entrypoints build the commands.

Every change locks the cart row first, advances the version by one and commits the cart with its
publication on ``cart:{id}``. A request that changes nothing publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cart.domain import commands
from cart.domain.errors import CartNotAccessible, ProductNotFound
from cart.domain.events import CartChanged
from cart.domain.model import Access, Cart, CartRules, price
from cart.service_layer import views
from cart.service_layer.unit_of_work import UnitOfWork
from cart.service_layer.views import CartView

log = logging.getLogger("cart.handlers")

REPUBLISH_BATCH = 200  # carts per transaction when a listing or stock change outdates many


@dataclass(frozen=True, slots=True)
class NewCart:
    view: CartView
    cart_token: str | None  # a guest's proof of ownership, handed out once
    created: bool  # False: the user already had an open cart, and this is it


async def create_cart(cmd: commands.CreateCart, uow: UnitOfWork, rules: CartRules) -> NewCart:
    """A new guest cart, or the user's open cart (a user has at most one)."""
    async with uow:
        if cmd.user_id is None:
            cart, token = Cart.for_guest()
            await uow.carts.add(cart)
            return NewCart((await _publish(uow, [cart], rules, cmd.client_id))[0], token, created=True)
        cart = Cart.for_user(cmd.user_id)
        if await uow.carts.add(cart):
            return NewCart((await _publish(uow, [cart], rules, cmd.client_id))[0], None, created=True)
        existing = await uow.carts.open_cart_of(cmd.user_id)
        assert existing is not None, "the insert conflicted with this user's open cart"
        return NewCart(await views.priced(uow, existing, rules), None, created=False)


async def set_item(cmd: commands.SetItem, uow: UnitOfWork, rules: CartRules) -> CartView:
    async with uow:
        cart = await views.accessible_cart(uow, cmd.cart_id, cmd.access, for_update=True)
        cart.check_version(cmd.if_match)
        if cmd.quantity > 0:
            offer = (await uow.catalog.offers([cmd.product_id])).get(cmd.product_id)
            if offer is None:
                raise ProductNotFound(cmd.product_id)
            rules.check_offer(offer)
        if not cart.set_quantity(cmd.product_id, cmd.quantity, rules):
            return await views.priced(uow, cart, rules)
        return (await _publish(uow, [cart], rules, cmd.client_id))[0]


async def merge_guest_cart(cmd: commands.MergeGuestCart, uow: UnitOfWork, rules: CartRules) -> CartView:
    """Fold a guest cart into the user's open cart (made if missing) and close it; returns the user's cart."""
    async with uow:
        guest = await views.accessible_cart(uow, cmd.guest_cart_id, Access(cart_token=cmd.cart_token))
        mine_id = await _open_cart_id(uow, cmd.user_id)
        locked = await uow.carts.lock([guest.id, mine_id])
        if guest.id not in locked:  # swept as idle between the read and the lock
            raise CartNotAccessible()
        guest, mine = locked[guest.id], locked[mine_id]
        mine.absorb(guest, await uow.catalog.offers(list(guest.lines)), rules)
        published = await _publish(uow, [guest, mine], rules, cmd.client_id)
    return published[1]


async def record_product(cmd: commands.RecordProduct, uow: UnitOfWork, rules: CartRules) -> list[CartView]:
    """Keep a newer listing, then republish the open carts that show the product's old name or price."""
    async with uow:
        await uow.catalog.record_listing(cmd.listing, cmd.changed_at)
        await uow.commit()
    return await _republish(uow, lambda: uow.carts.lock_mispriced(cmd.listing.product_id, REPUBLISH_BATCH), rules)


async def record_stock(cmd: commands.RecordStock, uow: UnitOfWork, rules: CartRules) -> list[CartView]:
    """Keep a newer stock level, then republish the open carts whose shown ``short`` flag is now wrong."""
    async with uow:
        await uow.catalog.record_stock(cmd.level)
        await uow.commit()
    return await _republish(uow, lambda: uow.carts.lock_misflagged(cmd.level.product_id, REPUBLISH_BATCH), rules)


async def empty_ordered_cart(cmd: commands.EmptyOrderedCart, uow: UnitOfWork, rules: CartRules) -> CartView | None:
    """Empty the cart an order was placed from (it stays open); None if there was nothing to do."""
    async with uow:
        cart = await uow.carts.get(cmd.cart_id, for_update=True)
        if cart is None or cart.owner_id != cmd.user_id:
            # The orders service cannot check cart ownership; an order never empties someone else's cart.
            log.warning("order of %s names cart %s, which is not theirs; ignored", cmd.user_id, cmd.cart_id)
            return None
        if not cart.empty():
            return None
        return (await _publish(uow, [cart], rules, None))[0]


async def forget_idle_guest_carts(cmd: commands.ForgetIdleGuestCarts, uow: UnitOfWork) -> list[str]:
    """Delete guest carts idle since ``cmd.idle_since`` (a batch); returns their ids.

    Only the browser that made a guest cart holds its token, so one left alone that long is
    abandoned and nothing else would ever remove it. A tab that still shows it gets ``403 cart not
    accessible`` on its next request, as for any cart id it cannot reach. Users' carts stay: a user
    has one, found again at sign-in.
    """
    async with uow:
        ids = await uow.carts.delete_idle_guest_carts(cmd.idle_since, cmd.batch)
        await uow.commit()
    return ids


async def _open_cart_id(uow: UnitOfWork, user_id: str) -> str:
    existing = await uow.carts.open_cart_of(user_id)
    if existing is not None:
        return existing.id
    cart = Cart.for_user(user_id)
    if await uow.carts.add(cart):
        return cart.id
    existing = await uow.carts.open_cart_of(user_id)  # made concurrently: its insert committed first
    assert existing is not None, "the insert conflicted with this user's open cart"
    return existing.id


async def _republish(
    uow: UnitOfWork, lock_outdated: Callable[[], Awaitable[list[Cart]]], rules: CartRules
) -> list[CartView]:
    """Republish, a batch per transaction, the open carts that ``lock_outdated`` finds showing a
    product other than the read models now say (its name, unit price or ``short`` flag).

    Runs after the change committed, in transactions of its own, so no lock is waited for while
    another is held in the opposite order: the change waited for the carts holding the product
    (``_publish``), and this locks carts only after it. It runs for a redelivered change too, so a
    crash between the two is finished by the redelivery; it only corrects what is still wrong.
    """
    views: list[CartView] = []
    done: set[str] = set()
    while True:
        async with uow:
            carts = await lock_outdated()
            # one this run already republished is outdated again by a newer change, whose own run redoes it
            fresh = [cart for cart in carts if cart.id not in done]
            if not fresh:
                return views
            views += await _publish(uow, fresh, rules, None)
        done.update(cart.id for cart in fresh)
        if len(carts) < REPUBLISH_BATCH:
            return views


async def _publish(uow: UnitOfWork, carts: Sequence[Cart], rules: CartRules, origin: str | None) -> list[CartView]:
    """Advance each cart's version, store it and commit it with its publication."""
    product_ids = sorted({pid for cart in carts for pid in cart.lines})
    await uow.catalog.hold_products(product_ids)  # what the tabs are shown below stays true until commit
    offers = await uow.catalog.offers(product_ids)
    changed = []
    for cart in carts:
        cart.advance()
        shown = price(cart, offers, rules.currency)
        await uow.carts.save(cart, shown)
        uow.collect(CartChanged(shown, origin))
        changed.append(shown)
    await uow.commit()
    return [CartView(shown, uow.published[shown.cart_id], origin) for shown in changed]
