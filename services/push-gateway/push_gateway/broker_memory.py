"""An in-memory broker for tests: a shared ``MemoryBus`` plays RabbitMQ for several pods."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from push_gateway.broker import OnMarker, OnMessage, OnPublication, decode_push_message


@dataclass
class MemoryBus:
    """The shared log and fanouts; one per simulated environment."""

    log: list[tuple[float, bytes | None, str | None]] = field(default_factory=list)  # (at, body, marker)
    readers: list[MemoryBroker] = field(default_factory=list)
    control: list[OnMessage] = field(default_factory=list)
    presence: list[OnMessage] = field(default_factory=list)


class MemoryBroker:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._on_publication: OnPublication | None = None
        self._on_marker: OnMarker | None = None
        self._closed = False
        self._handlers: list[tuple[list[OnMessage], OnMessage]] = []

    async def connect(self) -> None:
        return None

    async def consume_push_log(
        self, *, since: datetime | None, on_publication: OnPublication, on_marker: OnMarker
    ) -> None:
        self._on_publication, self._on_marker = on_publication, on_marker
        horizon = since.timestamp() if since else time.time()
        backlog = [entry for entry in self._bus.log if entry[0] >= horizon]
        self._bus.readers.append(self)
        for entry in backlog:
            self._deliver(entry)

    def _deliver(self, entry: tuple[float, bytes | None, str | None]) -> None:
        if self._closed or self._on_publication is None or self._on_marker is None:
            return
        _, body, marker = entry
        if marker is not None:
            self._on_marker(marker)
            return
        for publication in decode_push_message(body or b"")[0]:
            self._on_publication(publication)

    def _append(self, entry: tuple[float, bytes | None, str | None]) -> None:
        self._bus.log.append(entry)
        loop = asyncio.get_running_loop()
        for reader in list(self._bus.readers):
            loop.call_soon(reader._deliver, entry)

    async def publish_marker(self, marker: str) -> None:
        self._append((time.time(), None, marker))

    async def publish_push(self, body: bytes, channel: str, message_id: str | None = None) -> None:
        self._append((time.time(), body, None))

    async def consume_control(self, on_message: OnMessage) -> None:
        self._bus.control.append(on_message)
        self._handlers.append((self._bus.control, on_message))

    async def publish_control(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        for handler in list(self._bus.control):
            loop.call_soon(handler, dict(message))

    async def consume_presence(self, on_message: OnMessage) -> None:
        self._bus.presence.append(on_message)
        self._handlers.append((self._bus.presence, on_message))

    async def publish_presence(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        for handler in list(self._bus.presence):
            loop.call_soon(handler, dict(message))

    async def close(self) -> None:
        self._closed = True
        if self in self._bus.readers:
            self._bus.readers.remove(self)
        for handlers, handler in self._handlers:
            if handler in handlers:
                handlers.remove(handler)
