"""Several JSON documents in one broker message: how an outbox relay sends a run of them.

Every message costs its producer a socket write and a confirm, the broker a queue or stream entry,
and every consumer a delivery and an ack; a flash sale makes several per order (its events, its
channels' publications). A relay therefore sends a run of documents for one destination as one
JSON array, in order (push publications on the push log, integration events of one routing key on
the events exchange). A run of one still travels as a plain object, as a single document always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def join_bodies(bodies: Sequence[bytes]) -> bytes:
    """One message body carrying ``bodies`` (JSON objects): the object itself if alone, else an array."""
    return bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"


def documents(message: Any) -> list[Any]:
    """The documents of a parsed message, one object or an array of them, in order."""
    return message if isinstance(message, list) else [message]
