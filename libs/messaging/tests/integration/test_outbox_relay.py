"""The outbox and relay against real Postgres and RabbitMQ: nothing lost, nothing out of order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import aio_pika
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flashline_contracts.batches import documents
from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import StockChanged
from flashline_contracts.publications import PushPublication
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE
from flashline_messaging import outbox
from flashline_messaging.amqp import ConfirmedPublisher, connect
from flashline_messaging.relay import OutboxRelay
from flashline_messaging.schema import outbox_table

from ..conftest import eventually

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/nowhere"


async def tap(amqp_url: str, exchange: str, routing_key: str) -> tuple[aio_pika.abc.AbstractConnection, list[bytes]]:
    """A private queue bound to ``exchange``; returns the connection and the bodies it receives."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    kind = aio_pika.ExchangeType.FANOUT if exchange == PUSH_EXCHANGE else aio_pika.ExchangeType.TOPIC
    ex = await channel.declare_exchange(exchange, kind, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(ex, routing_key=routing_key)
    bodies: list[bytes] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        bodies.append(message.body)
        await message.ack()

    await queue.consume(on_message)
    return connection, bodies


def stock_event(product_id: int, version: int) -> EventEnvelope:
    return EventEnvelope.wrap(
        StockChanged(product_id=product_id, available=version, status="in_stock", version=version),
        producer="test",
        aggregate_id=product_id,
    )


async def pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(outbox_table))).scalar_one())


async def clear_outbox(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(outbox_table))


@contextlib.asynccontextmanager
async def running_relay(engine: AsyncEngine, url: str, db_url: str, service: str):
    connection = await connect(url, name="test-relay")
    relay = OutboxRelay(engine, ConfirmedPublisher(connection), service=service, database_url=db_url, poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connection.close()


async def test_committed_rows_are_published_in_order_and_removed(
    engine: AsyncEngine, amqp_url: str, messaging_db_url: str
) -> None:
    await clear_outbox(engine)
    product = int(uuid.uuid4().int % 10**9)
    conn, bodies = await tap(amqp_url, EVENTS_EXCHANGE, "StockChanged.v1")
    sessions = async_sessionmaker(engine)
    async with running_relay(engine, amqp_url, messaging_db_url, f"svc-{product}"):
        for version in range(1, 51):
            async with sessions() as session, session.begin():
                await outbox.add_event(session, stock_event(product, version))
        async with sessions() as session, session.begin():
            await outbox.add_event(session, stock_event(product, 999))
            await session.rollback()
        await eventually(lambda: len(events_of(bodies, product)) >= 50)
        versions = [e["payload"]["version"] for e in events_of(bodies, product)]
        assert versions == list(range(1, 51))  # in order, no rollback leak
        await eventually(lambda: _is_zero(engine))
    await conn.close()


def events_of(bodies: list[bytes], product: int) -> list[dict[str, Any]]:
    """The envelopes of ``product`` the tap has, in order (a message holds one, or a relay batch)."""
    envelopes = [doc for body in bodies for doc in documents(orjson.loads(body))]
    return [e for e in envelopes if e["aggregate_id"] == str(product)]


async def _is_zero(engine: AsyncEngine) -> bool:
    return await pending(engine) == 0


async def test_rows_wait_while_the_broker_is_down_and_none_is_lost(
    engine: AsyncEngine, amqp_url: str, messaging_db_url: str
) -> None:
    await clear_outbox(engine)
    product = int(uuid.uuid4().int % 10**9)
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for version in range(1, 21):
            await outbox.add_event(session, stock_event(product, version))

    # A relay whose broker is unreachable publishes nothing and loses nothing.
    with pytest.raises(OSError):
        await connect(DEAD_BROKER, name="dead")
    assert await pending(engine) == 20

    # A live connection that the broker cuts mid-way: the batch fails, rows stay.
    connection = await connect(amqp_url, name="cut-me")
    publisher = ConfirmedPublisher(connection)
    relay = OutboxRelay(engine, publisher, service=f"cut-{product}", database_url=messaging_db_url)
    await connection.close()
    with pytest.raises(Exception):  # noqa: B017 - any failure will do; the point is what remains
        await relay.publish_pending()
    assert await pending(engine) == 20

    # The broker is back: everything goes out exactly once from the outbox's point of view.
    conn, bodies = await tap(amqp_url, EVENTS_EXCHANGE, "StockChanged.v1")
    async with running_relay(engine, amqp_url, messaging_db_url, f"back-{product}"):
        await eventually(lambda: _is_zero(engine))
        await eventually(lambda: len(events_of(bodies, product)) == 20)
    assert [e["payload"]["version"] for e in events_of(bodies, product)] == list(range(1, 21))
    assert len([b for b in bodies if events_of([b], product)]) == 1, "rows waiting together leave as one message"
    await conn.close()


class FlakyPublisher:
    """Fails while ``down`` (a broker outage), then delegates to a real confirmed publisher."""

    def __init__(self, real: ConfirmedPublisher) -> None:
        self.real = real
        self.down = True
        self.failures = 0

    async def publish(self, messages):  # type: ignore[no-untyped-def]
        if self.down:
            self.failures += 1
            raise ConnectionError("broker unreachable")
        await self.real.publish(messages)


async def test_a_relay_backing_off_publishes_as_soon_as_it_is_woken(
    engine: AsyncEngine, amqp_url: str, messaging_db_url: str
) -> None:
    """After an outage the relay does not sit out its backoff: the reconnect wakes it."""
    await clear_outbox(engine)
    product = int(uuid.uuid4().int % 10**9)
    async with async_sessionmaker(engine)() as session, session.begin():
        await outbox.add_event(session, stock_event(product, 1))
    connection = await connect(amqp_url, name="flaky")
    flaky = FlakyPublisher(ConfirmedPublisher(connection))
    relay = OutboxRelay(engine, flaky, service=f"wake-{product}", database_url=messaging_db_url, max_publish_backoff=60)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: flaky.failures >= 7, timeout=30)  # the next wait is 3.2-9.6 s (6.4 s +-50 %)
        flaky.down = False
        woken = time.monotonic()
        relay.wake()
        await eventually(lambda: _is_zero(engine), timeout=15)
        assert time.monotonic() - woken < 2.5  # not the rest of the backoff
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connection.close()


async def test_channel_offsets_are_gapless_under_concurrency(
    engine: AsyncEngine, amqp_url: str, messaging_db_url: str
) -> None:
    await clear_outbox(engine)
    channel = f"stock:{uuid.uuid4().hex[:8]}"
    sessions = async_sessionmaker(engine)

    async def write(i: int) -> int:
        async with sessions() as session, session.begin():
            position = await outbox.publish_to_channel(
                session, channel, {"n": i}, exclude_client="tab" if i == 0 else None
            )
            await asyncio.sleep(0.001)
            return position.offset

    offsets = await asyncio.gather(*(write(i) for i in range(30)))
    assert sorted(offsets) == list(range(1, 31))
    async with sessions() as session:
        position = await outbox.stream_position(session, channel)
        latest = await outbox.latest_publication(session, channel)
        assert position.offset == 30 and len(position.epoch) == 8
        assert latest is not None and latest["offset"] == 30 and latest["epoch"] == position.epoch
        assert (await outbox.stream_position(session, "stock:none")).offset == 0

    conn, bodies = await tap(amqp_url, PUSH_EXCHANGE, "")

    def published() -> list[PushPublication]:
        docs = [doc for body in bodies for doc in documents(orjson.loads(body))]
        return [PushPublication.model_validate(doc) for doc in docs if doc["channel"] == channel]

    async with running_relay(engine, amqp_url, messaging_db_url, f"push-{channel}"):
        await eventually(lambda: len(published()) == 30)
    pubs = published()
    assert len(bodies) == 1, "the 30 rows waiting together left as one push-log message"
    assert [p.offset for p in pubs] == list(range(1, 31))  # commit order == offset order
    assert {p.epoch for p in pubs} == {position.epoch}
    assert sum(p.exclude_client == "tab" for p in pubs) == 1
    await conn.close()


async def test_one_statement_publishes_many_channels_in_order_with_a_channel_named_twice(engine: AsyncEngine) -> None:
    await clear_outbox(engine)
    tag = uuid.uuid4().hex[:8]
    b, a, c = f"user#b-{tag}", f"order:a-{tag}", f"tenant:c-{tag}"
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await outbox.publish_to_channel(session, b, {"n": 0})
        batch = [
            outbox.Publication(b, {"n": 1}),
            outbox.Publication(a, {"n": 2}, "tab"),
            outbox.Publication(b, {"n": 3}),
        ]
        positions = await outbox.publish_to_channels(session, batch, events=[stock_event(1, 1)])
        await outbox.publish_to_channel(session, c, {"n": 4})
    assert [p.offset for p in positions] == [2, 1, 3]
    assert positions[0].epoch == positions[2].epoch != positions[1].epoch
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox_table.c.routing_key, outbox_table.c.body).order_by("id"))).all()
        latest = {ch: await outbox.latest_publication(AsyncSession(bind=conn), ch) for ch in (a, b)}
    assert [key for key, _ in rows] == [b, b, a, b, "StockChanged.v1", c]
    docs = [orjson.loads(body) for key, body in rows if key != "StockChanged.v1"]
    assert [(d["data"]["n"], d["offset"], d.get("exclude_client")) for d in docs] == [
        (0, 1, None),
        (1, 2, None),
        (2, 1, "tab"),
        (3, 3, None),
        (4, 1, None),
    ]
    assert latest[b] is not None and (latest[b]["offset"], latest[b]["data"]) == (3, {"n": 3})
    assert latest[a] is not None and (latest[a]["offset"], latest[a]["data"]) == (1, {"n": 2})


async def test_only_one_relay_leads(engine: AsyncEngine, amqp_url: str, messaging_db_url: str) -> None:
    async with running_relay(engine, amqp_url, messaging_db_url, "leader-test") as first:
        await eventually(lambda: first.is_leader)
        async with running_relay(engine, amqp_url, messaging_db_url, "leader-test") as second:
            await asyncio.sleep(0.5)
            assert first.is_leader and not second.is_leader
