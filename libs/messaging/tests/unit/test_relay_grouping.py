"""Outbox rows -> broker messages: a destination's rows travel together, each channel and aggregate in order."""

from __future__ import annotations

import orjson

from flashline_contracts.batches import documents
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE
from flashline_messaging.outbound import GROUP_LIMIT, outbound_messages


def push(channel: str, offset: int) -> dict[str, object]:
    body = orjson.dumps({"channel": channel, "offset": offset})
    return {"exchange": PUSH_EXCHANGE, "routing_key": channel, "message_id": f"{channel}@e:{offset}", "body": body}


def event(name: str, aggregate: int) -> dict[str, object]:
    body = orjson.dumps({"type": name, "aggregate_id": str(aggregate)})
    return {"exchange": EVENTS_EXCHANGE, "routing_key": f"{name}.v1", "message_id": f"{name}-{aggregate}", "body": body}


def carried(body: bytes) -> list[tuple[str, object]]:
    """What a message carries: (channel, offset) per publication, (type, aggregate) per event."""
    return [
        (doc["channel"], doc["offset"]) if "channel" in doc else (doc["type"], int(doc["aggregate_id"]))
        for doc in documents(orjson.loads(body))
    ]


def test_placements_interleaved_by_transaction_leave_as_one_message_per_destination() -> None:
    rows = []
    for order in (1, 2, 3):
        rows += [push(f"order:{order}", 1), event("OrderPlaced", order), event("OrderStatusChanged", order)]
        rows.append(push(f"user#u{order}", 1))
    messages = outbound_messages(rows)
    assert [(m.exchange, m.routing_key) for m in messages] == [
        (PUSH_EXCHANGE, "order:1"),
        (EVENTS_EXCHANGE, "OrderPlaced.v1"),
        (EVENTS_EXCHANGE, "OrderStatusChanged.v1"),
    ]
    assert carried(messages[0].body) == [
        (c, 1) for c in ("order:1", "user#u1", "order:2", "user#u2", "order:3", "user#u3")
    ]
    assert carried(messages[1].body) == [("OrderPlaced", 1), ("OrderPlaced", 2), ("OrderPlaced", 3)]
    assert messages[1].message_id == "OrderPlaced-1..OrderPlaced-3"


def test_a_row_never_overtakes_an_earlier_row_of_its_aggregate() -> None:
    # Order 1 is cancelled (status change, then OrderCancelled) and placed again later in the batch:
    # its second status change may not join the first message, published before OrderCancelled.
    rows = [
        event("OrderStatusChanged", 1),
        event("OrderCancelled", 1),
        event("OrderStatusChanged", 2),
        event("OrderStatusChanged", 1),
    ]
    messages = outbound_messages(rows)
    assert [carried(m.body) for m in messages] == [
        [("OrderStatusChanged", 1), ("OrderStatusChanged", 2)],
        [("OrderCancelled", 1)],
        [("OrderStatusChanged", 1)],
    ]


def test_a_channel_keeps_its_order_across_messages() -> None:
    rows = [push("stock:1", 1), event("StockChanged", 1), push("stock:1", 2)]
    messages = outbound_messages(rows)
    assert [carried(m.body) for m in messages] == [[("stock:1", 1), ("stock:1", 2)], [("StockChanged", 1)]]


def test_a_message_of_one_stays_a_plain_object() -> None:
    rows = [push("order:1", 1), event("OrderPlaced", 1)]
    messages = outbound_messages(rows)
    assert [m.body for m in messages] == [rows[0]["body"], rows[1]["body"]]
    assert [m.message_id for m in messages] == ["order:1@e:1", "OrderPlaced-1"]


def test_an_unreadable_event_travels_alone() -> None:
    bad = {**event("OrderPlaced", 1), "body": b"not json", "message_id": "bad"}
    rows = [event("OrderPlaced", 2), bad, event("OrderPlaced", 3), {**bad, "body": b"[]", "message_id": "list"}]
    messages = outbound_messages(rows)
    assert [m.message_id for m in messages] == ["OrderPlaced-2..OrderPlaced-3", "bad", "list"]
    assert [m.body for m in messages[1:]] == [b"not json", b"[]"]


def test_a_long_run_is_split_at_the_limit_in_order() -> None:
    rows = [push("stock:1", n) for n in range(1, 2 * GROUP_LIMIT + 2)]
    messages = outbound_messages(rows)
    assert [len(carried(m.body)) for m in messages] == [GROUP_LIMIT, GROUP_LIMIT, 1]
    assert [offset for m in messages for _, offset in carried(m.body)] == list(range(1, 2 * GROUP_LIMIT + 2))


def test_no_rows_no_messages() -> None:
    assert outbound_messages([]) == []
