"""The cart's rules in plain Python: lines, caps, versions, access, merging and pricing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cart.domain.errors import CartClosed, CartNotAccessible, CurrencyMismatch, InvalidQuantity, StaleCart
from cart.domain.model import Access, Cart, CartRules, Offer, hash_token, price

RULES = CartRules(max_quantity_per_line=10, currency="EUR")


def offer(product_id: int, available: int, price_cents: int = 500, currency: str = "EUR") -> Offer:
    return Offer(product_id, f"Sneaker {product_id}", price_cents, currency, available)


def test_guest_carts_get_unguessable_ids_and_a_token_kept_only_as_a_hash() -> None:
    (first, token), (second, _) = Cart.for_guest(), Cart.for_guest()
    assert first.id != second.id and len(first.id) >= 22
    assert first.token_hash == hash_token(token) and token not in first.token_hash
    assert (first.owner_id, first.status, first.version, first.lines) == (None, "open", 0, {})


def test_set_quantity_adds_updates_and_removes_and_reports_no_ops() -> None:
    cart = Cart.for_user("alice")
    assert cart.set_quantity(1, 2, RULES) and cart.set_quantity(2, 1, RULES)
    assert cart.set_quantity(1, 5, RULES)
    assert not cart.set_quantity(1, 5, RULES)
    assert cart.lines == {1: 5, 2: 1}
    assert cart.set_quantity(1, 0, RULES) and cart.lines == {2: 1}
    assert not cart.set_quantity(9, 0, RULES)


@pytest.mark.parametrize("quantity", [-1, 11, 10**9])
def test_quantities_outside_zero_to_the_line_maximum_are_invalid(quantity: int) -> None:
    cart = Cart.for_user("alice")
    with pytest.raises(InvalidQuantity, match="between 0 and 10"):
        cart.set_quantity(1, quantity, RULES)
    assert cart.lines == {}


def test_the_line_maximum_itself_is_allowed() -> None:
    cart = Cart.for_user("alice")
    assert cart.set_quantity(1, 10, RULES) and cart.lines == {1: 10}


def test_closed_carts_refuse_changes() -> None:
    guest, _ = Cart.for_guest()
    Cart.for_user("alice").absorb(guest, {}, RULES)
    with pytest.raises(CartClosed):
        guest.set_quantity(1, 1, RULES)


def test_if_match_passes_on_the_current_version_or_when_absent() -> None:
    cart = Cart.for_user("alice")
    cart.advance()
    cart.advance()
    cart.check_version(None)
    cart.check_version(2)
    with pytest.raises(StaleCart) as stale:
        cart.check_version(1)
    assert (stale.value.expected, stale.value.actual) == (1, 2)


def test_user_carts_open_only_for_their_owner() -> None:
    cart = Cart.for_user("alice")
    cart.authorize(Access(user_id="alice"))
    for access in (Access(), Access(user_id="bob"), Access(cart_token="anything")):
        with pytest.raises(CartNotAccessible):
            cart.authorize(access)


def test_guest_carts_open_only_with_their_token() -> None:
    cart, token = Cart.for_guest()
    cart.authorize(Access(cart_token=token))
    cart.authorize(Access(user_id="alice", cart_token=token))
    for access in (Access(), Access(user_id="alice"), Access(cart_token=token + "x"), Access(cart_token="")):
        with pytest.raises(CartNotAccessible, match="cart not accessible"):
            cart.authorize(access)


def test_merge_adds_quantities_capped_by_availability_and_the_line_maximum() -> None:
    mine, guest = Cart.for_user("alice"), Cart.for_guest()[0]
    mine.lines = {1: 2, 2: 6, 3: 4}
    guest.lines = {1: 3, 2: 9, 3: 5, 4: 2, 5: 1}
    offers = {1: offer(1, 100), 2: offer(2, 100), 3: offer(3, 6), 4: offer(4, 1), 5: offer(5, 0)}
    mine.absorb(guest, offers, RULES)
    # 1: 2+3; 2: capped at the line maximum; 3: capped at availability; 4: new, capped; 5: sold out
    assert mine.lines == {1: 5, 2: 10, 3: 6, 4: 1}
    assert guest.status == "closed" and guest.lines == {1: 3, 2: 9, 3: 5, 4: 2, 5: 1}


def test_merge_never_lowers_a_line_the_user_already_had() -> None:
    mine, guest = Cart.for_user("alice"), Cart.for_guest()[0]
    mine.lines, guest.lines = {1: 8}, {1: 1}
    mine.absorb(guest, {1: offer(1, 3)}, RULES)
    assert mine.lines == {1: 8}


def test_a_closed_guest_cart_cannot_be_merged_again() -> None:
    mine, guest = Cart.for_user("alice"), Cart.for_guest()[0]
    mine.absorb(guest, {}, RULES)
    with pytest.raises(CartClosed):
        mine.absorb(guest, {}, RULES)


@given(
    mine=st.integers(0, 10),
    theirs=st.integers(1, 10),
    available=st.integers(0, 50),
    maximum=st.integers(1, 20),
)
def test_merged_quantity_stays_within_its_bounds(mine: int, theirs: int, available: int, maximum: int) -> None:
    rules = CartRules(max_quantity_per_line=maximum, currency="EUR")
    cart, guest = Cart.for_user("alice"), Cart.for_guest()[0]
    if mine:
        cart.lines[1] = mine
    guest.lines[1] = theirs
    cart.absorb(guest, {1: offer(1, available)}, rules)
    merged = cart.lines.get(1, 0)
    assert merged >= mine
    assert merged <= max(mine, min(available, maximum))
    assert merged <= mine + theirs


def test_empty_clears_an_open_cart_once() -> None:
    cart = Cart.for_user("alice")
    cart.lines = {1: 2}
    assert cart.empty() and cart.lines == {}
    assert not cart.empty()


def test_price_totals_lines_and_flags_those_short_of_availability() -> None:
    cart = Cart.for_user("alice")
    cart.lines = {1: 2, 2: 3}
    cart.advance()
    priced = price(cart, {1: offer(1, 5, 1_250), 2: offer(2, 2, 999)}, "EUR")
    assert (priced.cart_id, priced.version, priced.status) == (cart.id, 1, "open")
    assert [(line.product_id, line.line_total_cents, line.available, line.short) for line in priced.lines] == [
        (1, 2_500, 5, False),
        (2, 2_997, 2, True),
    ]
    assert (priced.items, priced.subtotal_cents, priced.currency) == (5, 5_497, "EUR")


def test_a_product_in_another_currency_is_refused() -> None:
    RULES.check_offer(offer(1, 1))
    with pytest.raises(CurrencyMismatch, match="USD"):
        RULES.check_offer(offer(1, 1, currency="USD"))
