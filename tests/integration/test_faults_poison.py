"""Poison messages on every service's queue: dead-lettered with a reason, and consuming goes on.

Malformed events are published onto the events exchange with a routing key only one service
consumes, so each must land in exactly that service's dead-letter queue, byte for byte, with the
reason and consumer headers. Real events published after the poison are still handled.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from flashline_contracts.topology import (
    CONSUMER_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    dead_letter_queue,
)

from .clients import create_product, get_product, place_order, wait_for_status
from .conftest import Stack, eventually
from .faults import publish_raw, take_dead_letters

# A routing key (event type and version) each service, and only that service, consumes, with a
# payload its handler would accept.
TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "catalog": (
        "OrderPlaced",
        {
            "order_id": 1,
            "user_id": "mallory",
            "lines": [{"product_id": 1, "quantity": 1, "unit_price_cents": 1}],
            "total_cents": 1,
            "currency": "EUR",
        },
    ),
    "orders": ("StockReserved", {"order_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}),
    "cart": ("StockChanged", {"product_id": 1, "available": 1, "status": "low", "version": 1}),
}


def envelope(event_type: str, payload: dict[str, Any], *, version: int = 1) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "version": version,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "mallory",
            "aggregate_id": str(payload.get("order_id", payload.get("product_id"))),
            "payload": payload,
        }
    )


def poison(service: str) -> list[tuple[str, bytes, str]]:
    """(expected reason prefix, body, message id) of each kind of poison for ``service``."""
    event_type, payload = TARGETS[service]
    key = f"{event_type}.v1"
    bad_payload = {**payload, next(iter(payload)): "not-a-number"}
    cases = [
        ("malformed envelope", b"\xff\xfe{not json at all", ""),
        ("malformed envelope", orjson.dumps(payload), ""),  # JSON, but no envelope around it
        ("malformed envelope", b"[1, 2, 3]", ""),
        (f"invalid {key} payload", envelope(event_type, bad_payload), ""),
        (f"no handler for {event_type}.v2", envelope(event_type, payload, version=2), ""),
    ]
    unknown_order = 10**15 + uuid.uuid4().int % 10**9  # an id the orders service never hands out
    if service == "catalog":  # a valid event the handler refuses for good
        cases.append(("permanent: ", envelope(event_type, {**payload, "order_id": unknown_order, "lines": []}), ""))
    if service == "orders":  # a reservation for an order that does not exist
        cases.append(("permanent: ", envelope(event_type, {**payload, "order_id": unknown_order}), ""))
    return [(reason, body, f"poison-{service}-{uuid.uuid4().hex}") for reason, body, _ in cases]


async def test_poison_is_dead_lettered_with_its_reason_and_consuming_goes_on(
    http: httpx.AsyncClient, fault_stack: Stack
) -> None:
    stack = fault_stack
    product = await create_product(http, stack, stock=5)
    cart = (await http.post(f"{stack.url('cart')}/carts")).json()

    async def cart_knows_product() -> bool:
        response = await http.put(
            f"{stack.url('cart')}/carts/{cart['cart_id']}/items/{product['id']}",
            json={"quantity": 2},
            headers={"X-Cart-Token": cart["cart_token"]},
        )
        return response.status_code == 200

    await eventually(cart_knows_product)

    expected: dict[str, tuple[str, str, bytes, str]] = {}  # message id -> service, reason, body, key
    messages = []
    for service, (event_type, _) in TARGETS.items():
        for reason, body, message_id in poison(service):
            expected[message_id] = (service, reason, body, f"{event_type}.v1")
            messages.append((f"{event_type}.v1", body, message_id))
    await publish_raw(stack.amqp_url, messages)

    # Real work published after the poison: catalog and orders run the saga, the cart follows stock.
    order = await place_order(http, stack, "alice", [{"product_id": product["id"], "quantity": 3}])
    await wait_for_status(http, stack, "alice", order["id"], "confirmed")
    assert (await get_product(http, stack, product["id"]))["available"] == 2

    async def cart_sees_stock() -> dict[str, Any] | None:
        response = await http.get(
            f"{stack.url('cart')}/carts/{cart['cart_id']}", headers={"X-Cart-Token": cart["cart_token"]}
        )
        line = response.json()["items"][0]
        return line if line["available"] == 2 else None

    await eventually(cart_sees_stock)

    dead = await take_dead_letters(stack.amqp_url, list(TARGETS), set(expected))
    by_id = {d.message_id: d for d in dead}
    assert set(by_id) == set(expected), f"missing from the dead-letter queues: {set(expected) - set(by_id)}"
    assert len(dead) == len(expected), "a poison message was dead-lettered twice"
    for message_id, (service, reason, body, key) in expected.items():
        letter = by_id[message_id]
        assert letter.queue == dead_letter_queue(service), (message_id, letter.queue)
        assert letter.body == body
        assert str(letter.headers[REASON_HEADER]).startswith(reason), (reason, letter.headers[REASON_HEADER])
        assert letter.headers[CONSUMER_HEADER] == service
        assert letter.headers[ORIGINAL_ROUTING_KEY_HEADER] == key

    for service in TARGETS:
        ready = (await http.get(f"{stack.url(service)}/readyz")).json()
        assert ready["checks"]["broker"] is True, (service, ready)
