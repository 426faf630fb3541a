"""The delivery policy both bus adapters share: parse, route, retry, or dead-letter with a reason.

A message is one envelope or an array of envelope objects (a relay batch, ``flashline_contracts.batches``);
each envelope of a batch succeeds or fails on its own, and they are handled concurrently, so a
group-committing handler takes them in one transaction (one aggregate's still one at a time, in
array order).

- A body that is not a known, valid contract is dead-lettered at once (it never will be).
- ``PermanentError`` from a handler: dead-lettered at once.
- A transient failure (``errors.is_transient``): retried with capped backoff for as long as it
  takes; the message stays unacknowledged meanwhile.
- Any other exception: retried up to ``max_attempts`` times, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson
from pydantic import ValidationError

from flashline_contracts.envelope import EventEnvelope, IntegrationEvent
from flashline_messaging.bus import Handler
from flashline_messaging.errors import PermanentError, is_transient

log = logging.getLogger("flashline.consumer")


@dataclass(frozen=True, slots=True)
class Handled:
    """The handler finished (or the message was a known duplicate): acknowledge it."""


@dataclass(frozen=True, slots=True)
class DeadLettered:
    reason: str
    attempts: int
    body: bytes = b""  # the envelope as it is dead-lettered: the message, or its element of a batch
    event_id: str = ""  # an element of a batch that could be read: its id, for the dead letter's


Outcome = Handled | DeadLettered


class KeyedLocks:
    """One lock per key, dropped when unused: handles one aggregate's events one at a time."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: defaultdict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]


class Dispatcher:
    def __init__(self, *, max_attempts: int = 5, base_backoff: float = 0.05, max_backoff: float = 5.0) -> None:
        self._handlers: dict[str, tuple[type[IntegrationEvent], list[Handler]]] = {}
        self._bindings: dict[str, None] = {}  # topic patterns, in subscription order
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._locks = KeyedLocks()

    def subscribe(self, event_type: type[IntegrationEvent], handler: Handler, *, binding: str | None = None) -> None:
        """Route ``event_type`` to ``handler``; ``binding`` narrows which of its topics are received
        (``IntegrationEvent.topic``), by default all of them."""
        key = event_type.routing_key()
        binding = binding or key
        if binding != key and not binding.startswith(f"{key}."):
            raise ValueError(f"binding {binding!r} does not start with {key!r}")
        self._handlers.setdefault(key, (event_type, []))[1].append(handler)
        self._bindings[binding] = None

    @property
    def bindings(self) -> list[str]:
        """The topic patterns to bind the service's queue with."""
        return list(self._bindings)

    def _parse(self, document: Any) -> tuple[EventEnvelope, IntegrationEvent, list[Handler]] | DeadLettered:
        """A parsed envelope (JSON) -> the envelope, its event and its handlers."""
        try:
            envelope = EventEnvelope.model_validate(document)
        except ValidationError as exc:
            return DeadLettered(f"malformed envelope: {_short(exc)}", attempts=1)
        entry = self._handlers.get(envelope.routing_key)
        if entry is None:
            return DeadLettered(f"no handler for {envelope.routing_key}", attempts=1)
        model, handlers = entry
        try:
            return envelope, envelope.open(model), handlers
        except (ValidationError, ValueError) as exc:
            return DeadLettered(f"invalid {envelope.routing_key} payload: {_short(exc)}", attempts=1)

    async def deliver(self, body: bytes) -> list[Outcome]:
        """Handle a message; the outcome of each envelope it carries, in order."""
        try:
            message = orjson.loads(body)
        except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            log.error("dead-lettering message: malformed envelope: %s", _short(exc))
            return [DeadLettered(f"malformed envelope: {_short(exc)}", attempts=1, body=body)]
        if not (isinstance(message, list) and message and all(isinstance(doc, dict) for doc in message)):
            return [await self._deliver_one(message, body)]  # one envelope; or no batch: whole, as it came
        return list(await asyncio.gather(*(self._deliver_one(document, None) for document in message)))

    async def _deliver_one(self, document: Any, body: bytes | None) -> Outcome:
        """``body``: the message's, when ``document`` is the whole message (kept byte for byte)."""
        parsed = self._parse(document)
        if isinstance(parsed, DeadLettered):
            log.error("dead-lettering message: %s", parsed.reason)
            return replace(parsed, body=body if body is not None else orjson.dumps(document))
        envelope, event, handlers = parsed
        async with self._locks.hold(f"{envelope.producer}:{envelope.aggregate_id}"):
            for handler in handlers:
                outcome = await self._run(handler, event, envelope)
                if isinstance(outcome, DeadLettered):
                    if body is not None:  # the whole message: dead-lettered as it came, id and all
                        return replace(outcome, body=body)
                    return replace(outcome, body=orjson.dumps(document), event_id=str(envelope.event_id))
        return Handled()

    async def _run(self, handler: Handler, event: IntegrationEvent, envelope: EventEnvelope) -> Outcome:
        attempts = 0
        transient_tries = 0
        while True:
            try:
                await handler(event, envelope)
                return Handled()
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                return self._dead(envelope, f"permanent: {_short(exc)}", attempts + 1)
            except Exception as exc:  # noqa: BLE001 - classified below
                if is_transient(exc):
                    transient_tries += 1
                    delay = self._delay(transient_tries)
                    log.warning(
                        "transient failure on %s %s (%s); retry in %.2fs",
                        envelope.type,
                        envelope.event_id,
                        _short(exc),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                attempts += 1
                if attempts >= self._max_attempts:
                    return self._dead(envelope, f"{type(exc).__name__}: {_short(exc)}", attempts)
                log.warning(
                    "handler failed on %s %s (attempt %d): %s", envelope.type, envelope.event_id, attempts, _short(exc)
                )
                await asyncio.sleep(self._delay(attempts))

    def _delay(self, attempt: int) -> float:
        return min(self._max_backoff, self._base_backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    @staticmethod
    def _dead(envelope: EventEnvelope, reason: str, attempts: int) -> DeadLettered:
        log.error("dead-lettering %s %s after %d attempt(s): %s", envelope.type, envelope.event_id, attempts, reason)
        return DeadLettered(reason, attempts)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
