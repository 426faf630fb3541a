"""The broker port: what the gateway needs from the message bus, whatever carries it.

- the **push log**: every publication of every channel, read from a point in time, in order;
  plus readiness markers a pod writes into it to learn when it has caught up;
- the **control** fanout: admin commands (disconnect a user, unsubscribe) reach every pod;
- the **presence** fanout: pods' periodic per-channel presence reports.

Adapters: ``broker_rabbitmq`` (a RabbitMQ stream and two fanout exchanges) and
``broker_memory`` (a fake for tests); one contract suite runs against both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from flashline_contracts.batches import documents

MARKER_HEADER = "x-flashline-marker"


@dataclass(slots=True)
class Incoming:
    """A publication as read from the push log; ``data`` is already-encoded JSON."""

    channel: str
    offset: int
    epoch: str
    data: bytes
    exclude_client: str | None
    published_at: float  # unix seconds, 0 when unknown


def decode_push_message(body: bytes) -> tuple[list[Incoming], list[str]]:
    """The publications of one push-log message, in order, and why each malformed one was left out.

    A message carries one ``PushPublication`` object or an array of them (a producer's relay
    batch, ``join_bodies``): one bad element costs only itself. A body that is not JSON at
    all is one problem.
    """
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [], [f"not JSON: {exc}"]
    publications: list[Incoming] = []
    problems: list[str] = []
    for doc in documents(message):
        try:
            publications.append(_publication(doc))
        except ValueError as exc:
            problems.append(str(exc))
    return publications, problems


def _publication(doc: Any) -> Incoming:
    """One ``PushPublication`` document; raises ValueError for anything malformed."""
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    channel, offset, epoch, data = doc.get("channel"), doc.get("offset"), doc.get("epoch"), doc.get("data")
    if not isinstance(channel, str) or not channel:
        raise ValueError("bad channel")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 1:
        raise ValueError("bad offset")
    if not isinstance(epoch, str) or not epoch:
        raise ValueError("bad epoch")
    exclude = doc.get("exclude_client")
    published = doc.get("published_at")
    published_at = 0.0
    if isinstance(published, str):
        try:
            published_at = datetime.fromisoformat(published.replace("Z", "+00:00")).timestamp()
        except ValueError:
            published_at = 0.0
    return Incoming(
        channel, offset, epoch, orjson.dumps(data), exclude if isinstance(exclude, str) else None, published_at
    )


OnPublication = Callable[[Incoming], None]
OnMarker = Callable[[str], None]
OnMessage = Callable[[dict[str, Any]], object]


class Broker(Protocol):
    async def connect(self) -> None:
        """Open connections and declare the topology (idempotent)."""

    async def consume_push_log(
        self, *, since: datetime | None, on_publication: OnPublication, on_marker: OnMarker
    ) -> None:
        """Start delivering the push log from ``since`` (None: from now), in log order."""

    async def publish_marker(self, marker: str) -> None:
        """Write a marker into the push log; ``on_marker(marker)`` fires when it is read back."""

    async def publish_push(self, body: bytes, channel: str, message_id: str | None = None) -> None:
        """Write a publication the way producers do (tests and tools)."""

    async def consume_control(self, on_message: OnMessage) -> None: ...

    async def publish_control(self, message: dict[str, Any]) -> None: ...

    async def consume_presence(self, on_message: OnMessage) -> None: ...

    async def publish_presence(self, message: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...
