"""Topic matching as RabbitMQ's topic exchange does it (the in-memory bus routes with it)."""

from __future__ import annotations

import pytest

from flashline_messaging.topics import matches


@pytest.mark.parametrize(
    ("binding", "key", "expected"),
    [
        ("StockChanged.v1", "StockChanged.v1", True),
        ("StockChanged.v1", "StockChanged.v2", False),
        ("OrderStatusChanged.v1", "OrderStatusChanged.v1.confirmed.cart", False),
        ("OrderStatusChanged.v1.#", "OrderStatusChanged.v1.confirmed.cart", True),
        ("OrderStatusChanged.v1.#", "OrderStatusChanged.v1", True),
        ("OrderStatusChanged.v1.confirmed.cart", "OrderStatusChanged.v1.confirmed.cart", True),
        ("OrderStatusChanged.v1.confirmed.cart", "OrderStatusChanged.v1.confirmed.direct", False),
        ("OrderStatusChanged.v1.*.cart", "OrderStatusChanged.v1.pending.cart", True),
        ("OrderStatusChanged.v1.*", "OrderStatusChanged.v1", False),
        ("#", "anything.at.all", True),
        ("#.cart", "OrderStatusChanged.v1.confirmed.cart", True),
        ("*.v1", "StockChanged.v1.extra", False),
    ],
)
def test_matches_like_a_topic_exchange(binding: str, key: str, expected: bool) -> None:
    assert matches(binding, key) is expected
