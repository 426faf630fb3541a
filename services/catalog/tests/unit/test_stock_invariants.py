"""Property: whatever orders, releases and restocks happen, stock adds up and never goes negative."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.domain import commands
from catalog.domain.values import Line
from catalog.service_layer import handlers, views

from ..fakes import FakeUnitOfWork

PRODUCTS = 3

order = st.tuples(
    st.integers(1, 8),
    st.lists(st.tuples(st.integers(1, PRODUCTS + 1), st.integers(1, 4)), min_size=1, max_size=3),
)
place = st.tuples(st.just("place"), st.just(0), st.lists(order, min_size=1, max_size=4))  # one batch
release = st.tuples(st.just("release"), st.integers(1, 8), st.just([]))
restock = st.tuples(st.just("restock"), st.integers(1, PRODUCTS), st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(
    stock=st.lists(st.integers(0, 6), min_size=PRODUCTS, max_size=PRODUCTS),
    steps=st.lists(st.one_of(place, release, restock), max_size=25),
)
async def test_reserved_plus_available_is_always_what_was_stocked(stock: list[int], steps: list[tuple]) -> None:
    uow = FakeUnitOfWork()
    for i, units in enumerate(stock):
        await handlers.create_product(commands.CreateProduct(f"P{i}", "p", 100, "EUR", units), uow)
    received = dict(enumerate(stock, start=1))
    for kind, key, arg in steps:
        if kind == "place":
            batch = [
                commands.ReserveOrder(order_id, tuple(Line(product, quantity) for product, quantity in lines))
                for order_id, lines in arg
            ]
            await handlers.reserve_orders(batch, uow)
        elif kind == "release":
            await handlers.release_order(commands.ReleaseOrder(key), uow)
        else:
            await handlers.restock(commands.Restock(key, arg), uow)
            received[key] += arg
    held: dict[int, int] = dict.fromkeys(received, 0)
    for order in range(1, 9):
        for line in await uow.reservations.reserved(order):
            held[line.product_id] += line.quantity
    for product_id, total in received.items():
        product = await views.product(uow, product_id)
        assert product.available >= 0
        assert product.available + held[product_id] == total
