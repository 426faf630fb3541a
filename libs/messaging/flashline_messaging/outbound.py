"""Outbox rows -> broker messages: the rows of one destination travel together, each stream in order.

A relay batch holds a few rows per order (its events, its channels' publications), interleaved as
the transactions wrote them. Each message costs the producer a write and a confirm, the broker an
entry and every consumer a delivery and an ack, so a batch's rows for one destination leave as one
message (``flashline_contracts.batches``): push publications on the push log, integration events
per routing key.

Consumers rely on order per stream only: the gateway per channel, services per aggregate (their
dispatcher handles one aggregate's events one at a time, in arrival order). So a row joins the
latest message of its destination unless a row of its stream went into a later message since;
rows of different streams may overtake each other, which they can on the way anyway (different
queues, different consumers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from flashline_contracts.batches import join_bodies
from flashline_contracts.topology import PUSH_EXCHANGE
from flashline_messaging.amqp import OutboundMessage

# Documents per message: a relay batch of a busy service carries a few hundred rows.
GROUP_LIMIT = 100

Row = Mapping[str, Any]


def outbound_messages(rows: Sequence[Row]) -> list[OutboundMessage]:
    """The messages for outbox rows in id order, at most ``GROUP_LIMIT`` rows each."""
    groups: list[list[Row]] = []
    latest: dict[tuple[str, str], int] = {}  # destination -> its open group
    placed: dict[tuple[str, str], int] = {}  # stream -> the group its last row went into
    for row in rows:
        destination, stream = _destination(row), _stream(row)
        if stream is None:  # not an envelope: alone, or it would spoil the array of a whole group
            groups.append([row])
            continue
        index = latest.get(destination)
        if index is None or placed.get(stream, -1) > index or len(groups[index]) == GROUP_LIMIT:
            index = latest[destination] = len(groups)
            groups.append([])
        groups[index].append(row)
        placed[stream] = index
    return [_message(group) for group in groups]


def _destination(row: Row) -> tuple[str, str]:
    """Where a row goes: the push log (whatever the channel: one stream) or an exchange and routing key."""
    return (PUSH_EXCHANGE, "") if row["exchange"] == PUSH_EXCHANGE else (row["exchange"], row["routing_key"])


def _stream(row: Row) -> tuple[str, str] | None:
    """What a row must stay in order with: its channel (push) or its event's aggregate; None if
    the event cannot be read (consumers dead-letter it)."""
    if row["exchange"] == PUSH_EXCHANGE:
        return ("channel", row["routing_key"])
    try:
        return ("aggregate", str(orjson.loads(row["body"])["aggregate_id"]))
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None


def _message(group: list[Row]) -> OutboundMessage:
    first, last = group[0], group[-1]
    message_id = first["message_id"] if len(group) == 1 else f"{first['message_id']}..{last['message_id']}"
    body = join_bodies([row["body"] for row in group])
    return OutboundMessage(first["exchange"], first["routing_key"], message_id, body)
