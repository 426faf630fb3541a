"""Outbox rows -> broker messages: push publications travel in runs, integration events alone, order kept."""

from __future__ import annotations

import orjson

from flashline_contracts.publications import push_documents
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE
from flashline_messaging.relay import PUSH_GROUP_LIMIT, outbound_messages


def push(channel: str, offset: int) -> dict[str, object]:
    body = orjson.dumps({"channel": channel, "offset": offset})
    return {"exchange": PUSH_EXCHANGE, "routing_key": channel, "message_id": f"{channel}@e:{offset}", "body": body}


def event(name: str) -> dict[str, object]:
    return {"exchange": EVENTS_EXCHANGE, "routing_key": f"{name}.v1", "message_id": name, "body": b'{"type":"x"}'}


def carried(body: bytes) -> list[tuple[str, int]]:
    return [(doc["channel"], doc["offset"]) for doc in push_documents(orjson.loads(body))]


def test_a_run_of_publications_is_one_message_and_an_event_ends_the_run() -> None:
    rows = [push("order:1", 1), push("user#a", 4), event("OrderPlaced"), push("order:1", 2), event("StockReserved")]
    messages = outbound_messages(rows)
    assert [m.exchange for m in messages] == [PUSH_EXCHANGE, EVENTS_EXCHANGE, PUSH_EXCHANGE, EVENTS_EXCHANGE]
    assert carried(messages[0].body) == [("order:1", 1), ("user#a", 4)]
    assert messages[0].message_id == "order:1@e:1..user#a@e:4"
    assert messages[1].routing_key == "OrderPlaced.v1" and messages[1].body == b'{"type":"x"}'
    assert messages[2].body == rows[3]["body"], "a run of one stays a plain object"
    assert messages[2].message_id == "order:1@e:2"


def test_a_long_run_is_split_at_the_limit_in_order() -> None:
    rows = [push("stock:1", n) for n in range(1, 2 * PUSH_GROUP_LIMIT + 2)]
    messages = outbound_messages(rows)
    assert [len(carried(m.body)) for m in messages] == [PUSH_GROUP_LIMIT, PUSH_GROUP_LIMIT, 1]
    assert [offset for m in messages for _, offset in carried(m.body)] == list(range(1, 2 * PUSH_GROUP_LIMIT + 2))


def test_no_rows_no_messages() -> None:
    assert outbound_messages([]) == []
