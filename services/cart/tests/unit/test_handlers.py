"""The real handlers on fakes: what each use case changes and which publications it commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cart.domain import commands
from cart.domain.errors import (
    CartClosed,
    CartNotAccessible,
    CurrencyMismatch,
    InvalidQuantity,
    NoOpenCart,
    ProductNotFound,
    StaleCart,
)
from cart.domain.model import Access, CartRules, Listing, StockLevel
from cart.service_layer import handlers, views

from ..fakes import FakeUnitOfWork

RULES = CartRules(max_quantity_per_line=10, currency="EUR")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def listed(uow: FakeUnitOfWork, product_id: int, available: int | None, *, price: int = 1_000) -> None:
    listing = Listing(product_id, f"Sneaker {product_id}", price, "EUR")
    await handlers.record_product(commands.RecordProduct(listing, T0), uow, RULES)
    if available is not None:
        await restock(uow, product_id, available, version=1)


async def restock(uow: FakeUnitOfWork, product_id: int, available: int, *, version: int) -> list[views.CartView]:
    level = StockLevel(product_id, available, "out" if available == 0 else "in_stock", version)
    return await handlers.record_stock(commands.RecordStock(level), uow, RULES)


async def guest_cart(uow: FakeUnitOfWork, client: str | None = None) -> tuple[str, Access]:
    made = await handlers.create_cart(commands.CreateCart(None, client), uow, RULES)
    assert made.cart_token is not None
    return made.view.cart.cart_id, Access(cart_token=made.cart_token)


async def put(
    uow: FakeUnitOfWork, cart_id: str, access: Access, product_id: int, quantity: int, **extra: object
) -> views.CartView:
    command = commands.SetItem(cart_id, product_id, quantity, access, **extra)  # type: ignore[arg-type]
    return await handlers.set_item(command, uow, RULES)


async def test_a_guest_cart_is_published_at_version_one_with_the_callers_client_excluded() -> None:
    uow = FakeUnitOfWork()
    made = await handlers.create_cart(commands.CreateCart(None, "tab-1"), uow, RULES)
    cart_id = made.view.cart.cart_id
    assert made.created and made.cart_token and made.view.cart.version == 1
    assert made.view.stream.offset == 1 and made.view.stream.epoch
    [publication] = uow.on(cart_id)
    assert publication.exclude_client == "tab-1" and publication.data["origin_client"] == "tab-1"
    assert publication.data["items"] == [] and publication.data["status"] == "open"
    cart = await views.cart(uow, cart_id, Access(cart_token=made.cart_token), RULES)
    assert cart.stream == made.view.stream


async def test_a_user_has_one_open_cart_and_creating_again_returns_it() -> None:
    uow = FakeUnitOfWork()
    first = await handlers.create_cart(commands.CreateCart("alice"), uow, RULES)
    again = await handlers.create_cart(commands.CreateCart("alice"), uow, RULES)
    assert first.created and not again.created and first.cart_token is None
    assert again.view.cart.cart_id == first.view.cart.cart_id and again.view.cart.version == 1
    assert len(uow.publications) == 1
    assert (await views.open_cart_of(uow, "alice", RULES)).cart.cart_id == first.view.cart.cart_id
    with pytest.raises(NoOpenCart):
        await views.open_cart_of(uow, "bob", RULES)


async def test_each_change_takes_the_next_version_and_a_no_op_takes_none() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5, price=1_250)
    cart_id, access = await guest_cart(uow)
    added = await put(uow, cart_id, access, 1, 2, client_id="tab-2")
    assert added.cart.version == 2 and added.stream.offset == 2 and added.origin_client == "tab-2"
    assert [(line.quantity, line.line_total_cents, line.short) for line in added.cart.lines] == [(2, 2_500, False)]
    same = await put(uow, cart_id, access, 1, 2)
    assert same.cart.version == 2 and len(uow.on(cart_id)) == 2
    removed = await put(uow, cart_id, access, 1, 0)
    assert removed.cart.version == 3 and removed.cart.lines == () and removed.cart.subtotal_cents == 0
    assert [p.offset for p in uow.on(cart_id)] == [1, 2, 3]


async def test_refused_changes_commit_nothing() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    await uow.catalog.record_listing(Listing(2, "Dollar shoe", 100, "USD"), T0)
    cart_id, access = await guest_cart(uow)
    with pytest.raises(InvalidQuantity):
        await put(uow, cart_id, access, 1, 11)
    with pytest.raises(ProductNotFound):
        await put(uow, cart_id, access, 99, 1)
    with pytest.raises(CurrencyMismatch):
        await put(uow, cart_id, access, 2, 1)
    for wrong in (Access(), Access(cart_token="nope"), Access(user_id="alice")):
        with pytest.raises(CartNotAccessible):
            await put(uow, cart_id, wrong, 1, 1)
    with pytest.raises(CartNotAccessible):
        await put(uow, "no-such-cart", access, 1, 1)
    assert len(uow.on(cart_id)) == 1
    assert (await views.cart(uow, cart_id, access, RULES)).cart.lines == ()


async def test_if_match_accepts_the_current_version_and_refuses_a_stale_one() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    cart_id, access = await guest_cart(uow)
    assert (await put(uow, cart_id, access, 1, 1, if_match=1)).cart.version == 2
    with pytest.raises(StaleCart) as stale:
        await put(uow, cart_id, access, 1, 3, if_match=1)
    assert stale.value.actual == 2
    assert (await views.cart(uow, cart_id, access, RULES)).cart.lines[0].quantity == 1


async def test_merge_folds_the_guest_cart_into_the_users_and_closes_it() -> None:
    uow = FakeUnitOfWork()
    for product_id, available in ((1, 100), (2, 3)):
        await listed(uow, product_id, available)
    mine = (await handlers.create_cart(commands.CreateCart("alice"), uow, RULES)).view.cart.cart_id
    await put(uow, mine, Access(user_id="alice"), 1, 2)
    guest_id, access = await guest_cart(uow)
    await put(uow, guest_id, access, 1, 4)
    await put(uow, guest_id, access, 2, 5)
    merged = await handlers.merge_guest_cart(
        commands.MergeGuestCart(guest_id, "alice", access.cart_token, "tab-9"), uow, RULES
    )
    assert merged.cart.cart_id == mine and merged.cart.version == 3
    assert [(line.product_id, line.quantity) for line in merged.cart.lines] == [(1, 6), (2, 3)]
    assert uow.on(guest_id)[-1].data["status"] == "closed" and uow.on(guest_id)[-1].exclude_client == "tab-9"
    assert uow.on(mine)[-1].offset == 3
    with pytest.raises(CartClosed):
        await handlers.merge_guest_cart(commands.MergeGuestCart(guest_id, "alice", access.cart_token), uow, RULES)
    with pytest.raises(CartClosed):
        await put(uow, guest_id, access, 1, 1)


async def test_merge_makes_the_users_cart_when_they_have_none() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=2)
    guest_id, access = await guest_cart(uow)
    await put(uow, guest_id, access, 1, 5)
    merged = await handlers.merge_guest_cart(commands.MergeGuestCart(guest_id, "bob", access.cart_token), uow, RULES)
    assert merged.cart.version == 1 and [(line.quantity, line.short) for line in merged.cart.lines] == [(2, False)]
    assert (await views.open_cart_of(uow, "bob", RULES)).cart.cart_id == merged.cart.cart_id


async def test_merge_needs_the_guest_carts_token_and_a_guest_cart() -> None:
    uow = FakeUnitOfWork()
    guest_id, access = await guest_cart(uow)
    users = (await handlers.create_cart(commands.CreateCart("carol"), uow, RULES)).view.cart.cart_id
    for cart_id, token in ((guest_id, None), (guest_id, "wrong"), (users, access.cart_token), ("nope", "x")):
        with pytest.raises(CartNotAccessible):
            await handlers.merge_guest_cart(commands.MergeGuestCart(cart_id, "alice", token), uow, RULES)
    assert len(uow.publications) == 2


async def test_stock_changes_republish_only_carts_whose_short_flag_flips() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=10)
    carts = {}
    for quantity in (1, 3, 5):
        cart_id, access = await guest_cart(uow)
        await put(uow, cart_id, access, 1, quantity)
        carts[quantity] = cart_id
    before = len(uow.publications)
    assert await restock(uow, 1, 6, version=2) == []  # nobody becomes short
    flipped = await restock(uow, 1, 3, version=3)  # the 5 becomes short
    assert [v.cart.cart_id for v in flipped] == [carts[5]]
    [line] = flipped[0].cart.lines
    assert line.short and line.available == 3 and flipped[0].origin_client is None
    assert len(uow.publications) == before + 1
    back = await restock(uow, 1, 10, version=4)  # the 5 fits again
    assert [v.cart.cart_id for v in back] == [carts[5]] and not back[0].cart.lines[0].short
    sold_out = await restock(uow, 1, 0, version=5)
    assert sorted(v.cart.cart_id for v in sold_out) == sorted(carts.values())
    assert all(v.cart.lines[0].short for v in sold_out)


async def test_duplicate_and_older_stock_levels_change_nothing() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    cart_id, access = await guest_cart(uow)
    await put(uow, cart_id, access, 1, 2)
    assert [v.cart.cart_id for v in await restock(uow, 1, 0, version=3)] == [cart_id]
    assert await restock(uow, 1, 9, version=2) == []  # arrived late
    assert await restock(uow, 1, 0, version=3) == []  # again
    assert (await views.cart(uow, cart_id, access, RULES)).cart.lines[0].available == 0


async def test_a_line_is_short_until_its_stock_level_is_known() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=None)
    cart_id, access = await guest_cart(uow)
    line = (await put(uow, cart_id, access, 1, 2)).cart.lines[0]
    assert (line.available, line.short) == (0, True)
    assert [v.cart.cart_id for v in await restock(uow, 1, 4, version=1)] == [cart_id]


async def test_closed_carts_are_not_republished_on_stock_changes() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    guest_id, access = await guest_cart(uow)
    await put(uow, guest_id, access, 1, 2)
    merged = await handlers.merge_guest_cart(commands.MergeGuestCart(guest_id, "alice", access.cart_token), uow, RULES)
    flipped = await restock(uow, 1, 0, version=2)
    assert [v.cart.cart_id for v in flipped] == [merged.cart.cart_id]
    assert uow.on(guest_id)[-1].data["status"] == "closed"


async def test_older_product_details_never_overwrite_newer_ones() -> None:
    uow = FakeUnitOfWork()
    new, old = Listing(1, "New name", 2_000, "EUR"), Listing(1, "Old name", 1_000, "EUR")
    assert await handlers.record_product(commands.RecordProduct(new, T0), uow, RULES) == []
    assert await handlers.record_product(commands.RecordProduct(old, T0 - timedelta(seconds=1)), uow, RULES) == []
    assert (await uow.catalog.offers([1]))[1].name == "New name"


async def test_a_new_name_or_price_reaches_every_open_cart_holding_the_product() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5, price=1_000)
    await listed(uow, 2, available=5)
    holding = [await guest_cart(uow) for _ in range(3)]
    for cart_id, access in holding:
        await put(uow, cart_id, access, 1, 2)
    bystander, access = await guest_cart(uow)
    await put(uow, bystander, access, 2, 1)

    repriced = Listing(1, "Sneaker 1", 1_200, "EUR")
    views = await handlers.record_product(commands.RecordProduct(repriced, T0 + timedelta(seconds=1)), uow, RULES)
    assert sorted(v.cart.cart_id for v in views) == sorted(cart_id for cart_id, _ in holding)
    for cart_id, _ in holding:
        [line] = uow.on(cart_id)[-1].data["items"]
        assert (line["unit_price_cents"], line["line_total_cents"]) == (1_200, 2_400)
        assert uow.on(cart_id)[-1].data["totals"]["subtotal_cents"] == 2_400
    assert len(uow.on(bystander)) == 2  # created, item added: nothing since

    again = commands.RecordProduct(repriced, T0 + timedelta(seconds=2))  # the same details, announced again
    assert await handlers.record_product(again, uow, RULES) == []


async def test_many_outdated_carts_are_republished_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "REPUBLISH_BATCH", 2)
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    carts = [await guest_cart(uow) for _ in range(5)]
    for cart_id, access in carts:
        await put(uow, cart_id, access, 1, 1)
    commits = uow.commits
    renamed = Listing(1, "Renamed", 1_000, "EUR")
    views = await handlers.record_product(commands.RecordProduct(renamed, T0 + timedelta(seconds=1)), uow, RULES)
    assert sorted(v.cart.cart_id for v in views) == sorted(cart_id for cart_id, _ in carts)
    assert uow.commits - commits == 1 + 3  # the listing, then 2 + 2 + 1 carts
    assert all(uow.on(cart_id)[-1].data["items"][0]["name"] == "Renamed" for cart_id, _ in carts)


async def test_a_confirmed_order_empties_its_owners_cart_once() -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    cart_id = (await handlers.create_cart(commands.CreateCart("alice"), uow, RULES)).view.cart.cart_id
    await put(uow, cart_id, Access(user_id="alice"), 1, 2)
    assert await handlers.empty_ordered_cart(commands.EmptyOrderedCart(cart_id, "mallory"), uow, RULES) is None
    emptied = await handlers.empty_ordered_cart(commands.EmptyOrderedCart(cart_id, "alice"), uow, RULES)
    assert emptied is not None and emptied.cart.lines == () and emptied.cart.status == "open"
    assert emptied.cart.version == 3 and uow.on(cart_id)[-1].data["items"] == []
    assert await handlers.empty_ordered_cart(commands.EmptyOrderedCart(cart_id, "alice"), uow, RULES) is None
    assert await handlers.empty_ordered_cart(commands.EmptyOrderedCart("gone", "alice"), uow, RULES) is None
    assert len(uow.on(cart_id)) == 3


async def test_a_guest_cart_swept_while_it_is_merged_is_not_accessible(monkeypatch: pytest.MonkeyPatch) -> None:
    uow = FakeUnitOfWork()
    await listed(uow, 1, available=5)
    guest_id, access = await guest_cart(uow)
    await put(uow, guest_id, access, 1, 1)
    lock = uow.carts.lock

    async def swept_first(cart_ids: list[str]) -> dict[str, object]:
        await uow.carts.delete_idle_guest_carts(datetime.now(UTC) + timedelta(days=1), 10)
        return await lock(cart_ids)

    monkeypatch.setattr(uow.carts, "lock", swept_first)
    with pytest.raises(CartNotAccessible):
        await handlers.merge_guest_cart(commands.MergeGuestCart(guest_id, "alice", access.cart_token), uow, RULES)
