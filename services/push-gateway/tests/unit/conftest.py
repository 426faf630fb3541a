"""A node and sessions driven by raw frames, no sockets, no event loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from flashline_auth import KeySet, TokenVerifier
from push_gateway.auth import Authorizer
from push_gateway.broker import Incoming
from push_gateway.metrics import Metrics
from push_gateway.namespaces import Namespaces
from push_gateway.node import Node, Position
from push_gateway.protocol.session import Limits, Session


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.backlog = 0  # pretend bytes stuck in the socket buffer

    def write(self, data: bytes) -> None:
        assert self.closed is None, "write after close"
        self.frames.append(data)

    def buffered(self) -> int:
        return self.backlog

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def messages(self) -> list[dict[str, Any]]:
        """Every JSON object written so far, batched frames split."""
        out = []
        for frame in self.frames:
            out.extend(orjson.loads(line) for line in frame.split(b"\n"))
        return out

    def take(self) -> list[dict[str, Any]]:
        out = self.messages()
        self.frames.clear()
        return out


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    """A node with fake scheduling: ``run_soon`` runs what the node scheduled."""

    def __init__(
        self,
        keys_dir: Path,
        *,
        limits: Limits | None = None,
        overrides: dict | None = None,
        lookup: bool = True,
        log_connections: bool = True,
    ) -> None:
        import time

        self.clock = Clock(time.time())
        self.soon: list[Callable[[], None]] = []
        self.later: list[tuple[float, Callable[[], None]]] = []
        self.lookups: list[str] = []
        verifier = TokenVerifier(KeySet.load(keys_dir / "trusted.json"), audience="flashline")
        urls = {ns: "http://producer.invalid" for ns in ("stock", "order", "user", "tenant", "cart")} if lookup else {}
        namespaces = Namespaces.build(overrides, urls)
        self.node = Node(
            node_id="test-node",
            authorizer=Authorizer(verifier, namespaces),
            limits=limits or Limits(),
            metrics=Metrics(),
            schedule=self.soon.append,
            call_later=lambda delay, fn: self.later.append((self.clock.now + delay, fn)),
            lookup=(lambda channel, ns: self.lookups.append(channel)) if lookup else None,
            clock=self.clock,
            log_connections=log_connections,
        )

    def session(self, token: str = "", *, connect: bool = True) -> tuple[Session, FakeTransport]:
        transport = FakeTransport()
        session = Session(self.node, transport, self.clock.now)
        self.node.opened(session)
        if connect:
            session.receive(orjson.dumps({"id": 1, "connect": {"token": token, "name": "test"}}), self.clock.now)
            reply = transport.take()[0]
            assert "connect" in reply, reply
        return session, transport

    def send(self, session: Session, command: dict[str, Any]) -> None:
        session.receive(orjson.dumps(command), self.clock.now)

    def ask(self, session: Session, transport: FakeTransport, command: dict[str, Any]) -> dict[str, Any]:
        self.send(session, command)
        replies = [m for m in transport.take() if m.get("id") == command["id"]]
        assert len(replies) == 1, replies
        return replies[0]

    def publish(self, channel: str, offset: int, data: Any, *, epoch: str = "e1", exclude: str | None = None) -> None:
        self.node.publish(Incoming(channel, offset, epoch, orjson.dumps(data), exclude, self.clock.now))
        self.run_soon()

    def run_soon(self) -> None:
        while self.soon:
            self.soon.pop(0)()

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        due = [item for item in self.later if item[0] <= self.clock.now]
        self.later = [item for item in self.later if item[0] > self.clock.now]
        for _, fn in sorted(due, key=lambda item: item[0]):
            fn()
        self.run_soon()

    def resolve(self, channel: str, position: Position | None = None, ok: bool = True) -> None:
        self.node.position_resolved(channel, position, ok)
        self.run_soon()


@pytest.fixture
def harness(keys_dir: Path) -> Harness:
    return Harness(keys_dir)


def pubs(messages: list[dict[str, Any]], channel: str | None = None) -> list[dict[str, Any]]:
    return [
        m["push"]["pub"]
        for m in messages
        if "push" in m and "pub" in m["push"] and (channel is None or m["push"]["channel"] == channel)
    ]


Harness.pubs = staticmethod(pubs)  # type: ignore[attr-defined]
