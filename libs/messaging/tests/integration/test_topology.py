"""The declared topology: what a producer publishes waits for consumers that have not started yet."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced
from flashline_contracts.events.orders import OrderLine
from flashline_messaging.amqp import ConfirmedPublisher, OutboundMessage, connect
from flashline_messaging.rabbitmq import RabbitMQEventBus
from flashline_service.testing import ThrowawayVhosts

from ..conftest import eventually


def placed() -> EventEnvelope:
    line = OrderLine(product_id=1, quantity=1, unit_price_cents=100)
    event = OrderPlaced(order_id=7, user_id="u", lines=(line,), total_cents=100, currency="EUR")
    return EventEnvelope.wrap(event, producer="orders", aggregate_id=7)


async def test_an_event_published_before_its_consumer_ever_started_reaches_it(
    throwaway_vhosts: ThrowawayVhosts,
) -> None:
    url = throwaway_vhosts.create("topology")
    connection = await connect(url, name="first-producer")
    envelope = placed()
    body = orjson.dumps(envelope.model_dump(mode="json"))
    message = OutboundMessage("flashline.events", envelope.routing_key, str(envelope.event_id), body)
    await ConfirmedPublisher(connection).publish([message])  # a fresh vhost: no consumer ever ran
    await connection.close()

    seen: list[EventEnvelope] = []

    async def record(event: object, env: EventEnvelope) -> None:
        seen.append(env)

    async def ignore(event: object, env: EventEnvelope) -> None:
        return None

    catalog = RabbitMQEventBus(url, service="catalog")
    catalog.subscribe(OrderPlaced, record)
    catalog.subscribe(OrderCancelled, ignore)
    catalog.subscribe(OrderExpired, ignore)
    await catalog.start()
    try:
        await eventually(lambda: len(seen) == 1)
        assert seen[0].event_id == envelope.event_id
    finally:
        await catalog.stop()


async def test_a_consumer_whose_subscriptions_drift_from_the_topology_refuses_to_start(
    throwaway_vhosts: ThrowawayVhosts,
) -> None:
    bus = RabbitMQEventBus(throwaway_vhosts.create("drift"), service="catalog")

    async def handler(event: object, env: EventEnvelope) -> None:
        await asyncio.sleep(0)

    bus.subscribe(OrderPlaced, handler)  # but not the releases the topology routes to it
    with pytest.raises(RuntimeError, match="CONSUMED_EVENTS"):
        await bus.start()
    await bus.stop(grace=0)
