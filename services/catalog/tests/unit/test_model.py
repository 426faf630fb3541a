"""The catalog's rules: status, line merging, why orders are turned down, product validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog.domain import events
from catalog.domain.errors import InvalidProduct, InvalidQuantity
from catalog.domain.model import (
    MAX_ID,
    MAX_QUANTITY,
    NewProduct,
    Product,
    StockLevel,
    allocate,
    check_quantity,
    impossible_lines,
    merge_lines,
    rejection_reason,
    stock_status,
)
from catalog.domain.values import Line, Shortage

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("available", "starts", "expected"),
    [
        (10, None, "in_stock"),
        (6, None, "in_stock"),
        (5, None, "low"),
        (1, None, "low"),
        (0, None, "out"),
        (10, LATER, "upcoming"),
        (0, LATER, "upcoming"),
        (10, NOW, "in_stock"),  # the start instant is already on sale
    ],
)
def test_status(available: int, starts: datetime | None, expected: str) -> None:
    assert stock_status(available, starts, now=NOW, low_threshold=5) == expected


def test_a_zero_threshold_never_says_low() -> None:
    assert stock_status(1, None, now=NOW, low_threshold=0) == "in_stock"


def test_lines_are_merged_per_product_in_id_order() -> None:
    merged = merge_lines([Line(9, 1), Line(2, 3), Line(9, 2)])
    assert merged == (Line(2, 3), Line(9, 3))


def test_shortage_reasons() -> None:
    level = StockLevel(1, available=2, version=4, sale_starts_at=LATER)
    assert level.shortage(1, NOW) == Shortage(1, 1, 2, "not_on_sale")
    assert level.shortage(2, LATER) is None
    assert level.shortage(3, LATER) == Shortage(1, 3, 2, "insufficient_stock")


def test_rejection_names_every_short_line_and_the_most_telling_reason() -> None:
    lines = (Line(1, 1), Line(2, 5), Line(3, 1), Line(4, 1))
    levels = {
        1: StockLevel(1, 10, 1),
        2: StockLevel(2, 4, 1),
        4: StockLevel(4, 10, 1, sale_starts_at=LATER),
    }
    allocation = allocate([(7, lines)], levels, now=NOW)
    assert allocation.levels == ()
    [rejected] = allocation.decisions
    short = (
        Shortage(2, 5, 4, "insufficient_stock"),
        Shortage(3, 1, 0, "unknown_product"),
        Shortage(4, 1, 10, "not_on_sale"),
    )
    assert rejected == events.OrderRejected(7, "unknown_product", short)
    assert rejection_reason(short[::2]) == "not_on_sale"


def test_a_batch_is_first_come_first_served_and_each_product_moves_one_version() -> None:
    levels = {1: StockLevel(1, 3, 5), 2: StockLevel(2, 1, 9)}
    allocation = allocate(
        [(10, [Line(1, 2)]), (11, [Line(2, 1), Line(1, 2)]), (12, [Line(1, 1), Line(1, 0)]), (13, [Line(2, 1)])],
        levels,
        now=NOW,
    )
    assert allocation.decisions == (
        events.OrderReserved(10, (Line(1, 2),)),
        events.OrderRejected(11, "insufficient_stock", (Shortage(1, 2, 1, "insufficient_stock"),)),
        events.OrderReserved(12, (Line(1, 1),)),  # lines of one product merged
        events.OrderReserved(13, (Line(2, 1),)),
    )
    assert allocation.levels == (StockLevel(1, 0, 6), StockLevel(2, 0, 10))


def test_impossible_lines_reject_without_looking_at_stock() -> None:
    allocation = allocate([(20, [Line(1, 1), Line(-3, 1)])], {1: StockLevel(1, 3, 1)}, now=NOW)
    assert allocation.decisions == (
        events.OrderRejected(20, "unknown_product", (Shortage(-3, 1, 0, "unknown_product"),)),
    )
    assert allocation.levels == ()


def test_lines_out_of_range_are_impossible() -> None:
    found = impossible_lines([Line(0, 1), Line(MAX_ID + 1, 1), Line(5, MAX_QUANTITY + 1), Line(6, 1)])
    assert [(s.product_id, s.reason) for s in found] == [
        (0, "unknown_product"),
        (MAX_ID + 1, "unknown_product"),
        (5, "insufficient_stock"),
    ]


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_quantities_out_of_range_are_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        check_quantity(quantity)


def _new(**overrides: object) -> NewProduct:
    fields: dict[str, object] = {
        "sku": "SNK-1",
        "name": " Air Max ",
        "price_cents": 12_000,
        "currency": "EUR",
        "stock": 5,
        "sale_starts_at": None,
        "now": NOW,
    }
    return NewProduct.create(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_new_product_is_trimmed_and_announced_unless_its_sale_is_ahead() -> None:
    assert _new().name == "Air Max"
    assert _new().sale_announced is True
    assert _new(sale_starts_at=LATER).sale_announced is False
    assert _new(sale_starts_at=NOW - timedelta(seconds=1)).sale_announced is True


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"sku": ""}, InvalidProduct),
        ({"sku": "has space"}, InvalidProduct),
        ({"name": "   "}, InvalidProduct),
        ({"price_cents": -1}, InvalidProduct),
        ({"currency": "eur"}, InvalidProduct),
        ({"stock": -1}, InvalidQuantity),
        ({"sale_starts_at": datetime(2030, 1, 1)}, InvalidProduct),  # naive: ambiguous
    ],
)
def test_invalid_products_are_refused(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _new(**overrides)


def _product(**overrides: object) -> Product:
    fields: dict[str, object] = {
        "id": 7,
        "sku": "SNK-7",
        "name": "Dunk",
        "price_cents": 9_000,
        "currency": "EUR",
        "available": 3,
        "version": 4,
        "sale_starts_at": None,
        "sale_announced": True,
    }
    return Product(**{**fields, **overrides})  # type: ignore[arg-type]


def test_revising_name_or_price_keeps_the_stock_version() -> None:
    revised, changes = _product().revise(name="Dunk Low", price_cents=9_500, sale_starts_at=None, now=NOW)
    assert (revised.name, revised.price_cents, revised.version) == ("Dunk Low", 9_500, 4)
    assert changes == (events.ProductDetailsChanged(7, "SNK-7", "Dunk Low", 9_500, "EUR", None),)


def test_rescheduling_takes_a_stock_version_and_rearms_the_announcement() -> None:
    revised, changes = _product().revise(name="Dunk", price_cents=9_000, sale_starts_at=LATER, now=NOW)
    assert (revised.version, revised.sale_announced) == (5, False)
    assert changes[1] == events.StockLevelChanged(7, 3, 5, LATER)


def test_an_identical_revision_changes_nothing() -> None:
    product = _product()
    assert product.revise(name="Dunk", price_cents=9_000, sale_starts_at=None, now=NOW) == (product, ())
