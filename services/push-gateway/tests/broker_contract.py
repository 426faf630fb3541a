"""One contract every broker adapter passes (the memory fake and RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from flashline_contracts.batches import join_bodies
from push_gateway.broker import Incoming


def _body(channel: str, offset: int, **extra) -> bytes:
    return json.dumps(
        {
            "channel": channel,
            "offset": offset,
            "epoch": "e",
            "data": {"n": offset},
            "published_at": datetime.now(UTC).isoformat(),
            **extra,
        }
    ).encode()


class Reader:
    def __init__(self) -> None:
        self.publications: list[Incoming] = []
        self.markers: list[str] = []
        self.marker_seen = asyncio.Event()

    def on_publication(self, pub: Incoming) -> None:
        self.publications.append(pub)

    def on_marker(self, marker: str) -> None:
        self.markers.append(marker)
        self.marker_seen.set()

    def of(self, channel: str) -> list[Incoming]:
        return [p for p in self.publications if p.channel == channel]


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class BrokerContract:
    """Subclasses provide a ``make_broker`` fixture: a factory of connected-to-the-same-bus brokers."""

    async def test_push_log_in_order_with_marker_after(self, make_broker):
        broker = make_broker()
        await broker.connect()
        reader = Reader()
        channel = f"stock:{uuid.uuid4().hex}"
        await broker.consume_push_log(since=None, on_publication=reader.on_publication, on_marker=reader.on_marker)
        for offset in range(1, 6):
            await broker.publish_push(_body(channel, offset, exclude_client="c1"), channel)
        marker = uuid.uuid4().hex
        await broker.publish_marker(marker)
        await asyncio.wait_for(reader.marker_seen.wait(), 10)
        got = reader.of(channel)
        assert [p.offset for p in got] == [1, 2, 3, 4, 5]
        assert json.loads(got[0].data) == {"n": 1} and got[0].exclude_client == "c1" and got[0].published_at > 0
        assert marker in reader.markers
        await broker.close()

    async def test_reading_from_a_past_horizon_replays_the_window(self, make_broker):
        writer = make_broker()
        await writer.connect()
        channel = f"order:{uuid.uuid4().hex}"
        for offset in (1, 2):
            await writer.publish_push(_body(channel, offset), channel)
        await asyncio.sleep(0.2)
        late = make_broker()
        await late.connect()
        reader = Reader()
        await late.consume_push_log(
            since=datetime.now(UTC) - timedelta(seconds=60),
            on_publication=reader.on_publication,
            on_marker=reader.on_marker,
        )
        await writer.publish_push(_body(channel, 3), channel)
        await _until(lambda: len(reader.of(channel)) >= 3)
        assert [p.offset for p in reader.of(channel)] == [1, 2, 3]
        fresh = make_broker()
        await fresh.connect()
        now_reader = Reader()
        await fresh.consume_push_log(
            since=None, on_publication=now_reader.on_publication, on_marker=now_reader.on_marker
        )
        await writer.publish_push(_body(channel, 4), channel)
        await _until(lambda: len(now_reader.of(channel)) >= 1)
        assert [p.offset for p in now_reader.of(channel)] == [4]
        for broker in (writer, late, fresh):
            await broker.close()

    async def test_malformed_push_messages_are_skipped(self, make_broker):
        broker = make_broker()
        await broker.connect()
        reader = Reader()
        channel = f"stock:{uuid.uuid4().hex}"
        await broker.consume_push_log(since=None, on_publication=reader.on_publication, on_marker=reader.on_marker)
        await broker.publish_push(b"not json", channel)
        bad = json.dumps({"channel": channel, "offset": 0, "epoch": "e", "data": {}}).encode()
        await broker.publish_push(bad, channel)
        await broker.publish_push(_body(channel, 1), channel)
        await _until(lambda: len(reader.of(channel)) >= 1)
        assert [p.offset for p in reader.of(channel)] == [1]
        await broker.close()

    async def test_a_batch_message_delivers_its_publications_in_order_without_its_bad_one(self, make_broker):
        broker = make_broker()
        await broker.connect()
        reader = Reader()
        stock, order = f"stock:{uuid.uuid4().hex}", f"order:{uuid.uuid4().hex}"
        await broker.consume_push_log(since=None, on_publication=reader.on_publication, on_marker=reader.on_marker)
        bad = json.dumps({"channel": stock, "offset": "x", "epoch": "e", "data": {}}).encode()
        batch = join_bodies([_body(stock, 1), _body(order, 1), bad, _body(stock, 2)])
        await broker.publish_push(batch, stock)
        await _until(lambda: len(reader.of(stock)) >= 2)
        mine = [(p.channel, p.offset) for p in reader.publications if p.channel in (stock, order)]
        assert mine == [(stock, 1), (order, 1), (stock, 2)]
        await broker.close()

    async def test_control_and_presence_reach_every_pod(self, make_broker):
        pods = [make_broker(), make_broker()]
        inboxes: list[list[dict]] = [[], []]
        presence: list[list[dict]] = [[], []]
        for pod, inbox, seen in zip(pods, inboxes, presence, strict=True):
            await pod.connect()
            await pod.consume_control(inbox.append)
            await pod.consume_presence(seen.append)
        tag = uuid.uuid4().hex
        await pods[0].publish_control({"type": "disconnect", "user": tag})
        await pods[1].publish_presence({"pod": tag, "counts": {"stock:1": [1, 1]}})
        await _until(lambda: all(any(m.get("user") == tag for m in inbox) for inbox in inboxes))
        await _until(lambda: all(any(m.get("pod") == tag for m in seen) for seen in presence))
        for pod in pods:
            await pod.close()
