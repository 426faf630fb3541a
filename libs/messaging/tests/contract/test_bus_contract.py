"""One contract for every bus adapter: the in-memory fake must behave as RabbitMQ does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from flashline_contracts.batches import join_bodies
from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderStatusChanged, StockChanged, StockReserved
from flashline_messaging.errors import PermanentError, TransientError

from ..conftest import BusHarness, eventually, raw

NOW = datetime.now(UTC)


def stock(version: int = 1) -> EventEnvelope:
    return EventEnvelope.wrap(
        StockChanged(product_id=7, available=3, status="low", version=version), producer="catalog", aggregate_id=7
    )


async def test_delivers_what_was_published_to_its_subscriber(harness: BusHarness) -> None:
    got: list[tuple[StockChanged, EventEnvelope]] = []

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        got.append((event, envelope))

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    sent = stock()
    await harness.publish(sent)
    await eventually(lambda: len(got) == 1)
    event, envelope = got[0]
    assert envelope == sent
    assert event == StockChanged(product_id=7, available=3, status="low", version=1)


async def test_does_not_deliver_types_nobody_subscribed(harness: BusHarness) -> None:
    got: list[object] = []

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        got.append(event)

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    await harness.publish(EventEnvelope.wrap(StockReserved(order_id=1, lines=()), producer="catalog", aggregate_id=1))
    await harness.publish(stock(2))
    await eventually(lambda: len(got) == 1)
    assert got[0].version == 2  # type: ignore[attr-defined]
    assert await harness.dead_letters() == []


async def test_a_narrowed_binding_receives_only_its_topics(harness: BusHarness) -> None:
    got: list[tuple[str, str | None]] = []

    async def handle(event: OrderStatusChanged, envelope: EventEnvelope) -> None:
        got.append((event.status, event.cart_id))

    harness.bus.subscribe(OrderStatusChanged, handle, binding="OrderStatusChanged.v1.confirmed.cart")
    await harness.bus.start()
    for order_id, status, cart_id in [(1, "pending", "c1"), (2, "confirmed", None), (3, "confirmed", "c3")]:
        event = OrderStatusChanged(order_id=order_id, user_id="u", cart_id=cart_id, status=status, version=1, at=NOW)
        await harness.publish(EventEnvelope.wrap(event, producer="orders", aggregate_id=order_id))
    await eventually(lambda: len(got) == 1)
    await asyncio.sleep(0.2)  # the others, had they been routed, would have arrived by now
    assert got == [("confirmed", "c3")]


async def test_malformed_message_is_dead_lettered_with_reason_and_consumption_continues(harness: BusHarness) -> None:
    got: list[StockChanged] = []

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        got.append(event)

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    await harness.inject_raw(b"{not json", StockChanged.routing_key())
    broken = raw(stock())
    broken = broken.replace(b'"available":3,', b"")
    await harness.inject_raw(broken, StockChanged.routing_key())
    await harness.publish(stock(5))
    await eventually(lambda: len(got) == 1)
    dead = []

    async def two_dead() -> bool:
        dead[:] = await harness.dead_letters()
        return len(dead) == 2

    await eventually(two_dead)
    reasons = sorted(reason for _, reason in dead)
    assert reasons[0].startswith("invalid StockChanged.v1 payload") and "available" in reasons[0]
    assert reasons[1].startswith("malformed envelope")
    assert got[0].version == 5


async def test_permanent_error_dead_letters_at_once(harness: BusHarness) -> None:
    calls = 0

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("product 7 is not ours")

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    await harness.publish(stock())
    dead: list[tuple[bytes, str]] = []

    async def one_dead() -> bool:
        dead[:] = await harness.dead_letters()
        return len(dead) == 1

    await eventually(one_dead)
    assert calls == 1
    assert dead[0][1] == "permanent: product 7 is not ours"


async def test_transient_errors_are_retried_until_success(harness: BusHarness) -> None:
    calls = 0

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise TransientError("database restarting")

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    await harness.publish(stock())
    await eventually(lambda: calls == 4)
    assert await harness.dead_letters() == []


async def test_unexpected_errors_are_dead_lettered_after_bounded_attempts(harness: BusHarness) -> None:
    calls = 0

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    await harness.publish(stock())
    dead: list[tuple[bytes, str]] = []

    async def one_dead() -> bool:
        dead[:] = await harness.dead_letters()
        return len(dead) == 1

    await eventually(one_dead)
    assert calls == 3
    assert dead[0][1] == "KeyError: 'bug'"


async def test_a_batch_message_delivers_each_envelope_and_dead_letters_only_the_poison_one(
    harness: BusHarness,
) -> None:
    got: list[tuple[int, int]] = []
    running = 0
    most_at_once = 0

    async def handle(event: StockChanged, envelope: EventEnvelope) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.05)  # long enough for the batch's other products to start meanwhile
        running -= 1
        if event.version == 13:
            raise PermanentError("version 13 is cursed")
        got.append((event.product_id, event.version))

    def level(product_id: int, version: int) -> bytes:
        event = StockChanged(product_id=product_id, available=3, status="low", version=version)
        return raw(EventEnvelope.wrap(event, producer="catalog", aggregate_id=product_id))

    harness.bus.subscribe(StockChanged, handle)
    await harness.bus.start()
    poison = level(2, 13)
    bodies = [level(1, 1), level(2, 1), poison, level(1, 2), b'{"type": "StockChanged"}']
    await harness.inject_raw(join_bodies(bodies), StockChanged.routing_key())
    await eventually(lambda: len(got) == 3)
    assert sorted(got) == [(1, 1), (1, 2), (2, 1)]
    assert got.index((1, 1)) < got.index((1, 2)), "one aggregate's envelopes in array order"
    assert most_at_once >= 2, "different aggregates are handled concurrently"
    dead: list[tuple[bytes, str]] = []

    async def two_dead() -> bool:
        dead[:] = await harness.dead_letters()
        return len(dead) == 2

    await eventually(two_dead)
    by_reason = {reason.split(":")[0]: body for body, reason in dead}
    assert orjson.loads(by_reason["permanent"]) == orjson.loads(poison), "the poison envelope alone"
    assert orjson.loads(by_reason["malformed envelope"]) == {"type": "StockChanged"}
