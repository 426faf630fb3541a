"""Pricing from the catalog read model, request validation, and the idempotency fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orders.domain.errors import InvalidOrder, MixedCurrencies, UnknownProducts
from orders.domain.pricing import CatalogProduct, check_items, fingerprint, price
from orders.domain.values import Item, Line

AT = datetime(2030, 1, 1, tzinfo=UTC)
CATALOG = {
    1: CatalogProduct(1, "Runner", 2500, "EUR", AT),
    2: CatalogProduct(2, "Laces", 300, "EUR", AT),
    3: CatalogProduct(3, "Import", 999, "USD", AT),
}


def test_lines_take_the_catalog_price_in_the_order_asked() -> None:
    lines, currency = price([Item(2, 3), Item(1, 1)], CATALOG)
    assert lines == (Line(2, 3, 300), Line(1, 1, 2500)) and currency == "EUR"


def test_unknown_products_and_mixed_currencies_are_refused_with_the_culprits() -> None:
    with pytest.raises(UnknownProducts) as unknown:
        price([Item(1, 1), Item(42, 1), Item(41, 2)], CATALOG)
    assert unknown.value.extra() == {"product_ids": [41, 42]}
    with pytest.raises(MixedCurrencies) as mixed:
        price([Item(1, 1), Item(3, 1)], CATALOG)
    assert mixed.value.extra() == {"currencies": ["EUR", "USD"]}


@pytest.mark.parametrize(
    ("items", "cart_id", "reason"),
    [
        ([], None, "at least one line"),
        ([Item(1, 1), Item(1, 2)], None, "appears twice"),
        ([Item(1, 0)], None, "quantity"),
        ([Item(0, 1)], None, "not a valid id"),
        ([Item(1, 1)] * 101, None, "at most 100"),
        ([Item(1, 1)], "", "cart_id"),
    ],
)
def test_requests_no_catalog_could_satisfy_are_invalid(items: list[Item], cart_id: str | None, reason: str) -> None:
    with pytest.raises(InvalidOrder, match=reason):
        check_items(items, cart_id)


def test_the_fingerprint_ignores_line_order_but_not_content() -> None:
    base = fingerprint([Item(1, 1), Item(2, 2)], "c")
    assert base == fingerprint([Item(2, 2), Item(1, 1)], "c")
    assert base != fingerprint([Item(1, 1), Item(2, 3)], "c")
    assert base != fingerprint([Item(1, 1), Item(2, 2)], None)
