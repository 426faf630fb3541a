"""Names and arguments of the RabbitMQ objects every producer and consumer agrees on (pure data)."""

from __future__ import annotations

from typing import Any

EVENTS_EXCHANGE = "flashline.events"  # topic; routing key "<EventType>.v<version>[.<facet>...]" (its topic)
DEAD_LETTER_EXCHANGE = "flashline.dead-letter"  # direct; routing key "<queue>.dlq"
PUSH_EXCHANGE = "flashline.push"  # fanout; routing key = channel
PUSH_STREAM = "flashline.push"  # the push log every gateway pod reads

# Header names carried by dead-lettered messages.
REASON_HEADER = "x-flashline-reason"
CONSUMER_HEADER = "x-flashline-consumer"
ORIGINAL_ROUTING_KEY_HEADER = "x-flashline-original-routing-key"


def events_queue(service: str) -> str:
    return f"{service}.events"


def dead_letter_queue(service: str) -> str:
    return f"{events_queue(service)}.dlq"


def events_queue_arguments(service: str, *, delivery_limit: int) -> dict[str, Any]:
    """A quorum queue whose poison messages go to the service's dead-letter queue.

    ``x-delivery-limit`` bounds redeliveries after consumer crashes (the broker dead-letters
    the message beyond it); deliberate dead-lettering is done by the consumer with a reason.
    """
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue(service),
        "x-delivery-limit": delivery_limit,
    }


DELIVERY_LIMIT = 50  # redeliveries after consumer crashes before the broker dead-letters a message

# Who consumes which events: topic bindings, each an event's routing key or a pattern narrowing it
# (``IntegrationEvent.topic``). Every service declares all of these queues with their bindings
# before it publishes anything, so an event is never routed nowhere because its consumer has not
# started yet (a first install, a consumer scaled to zero); a consumer refuses to start when its
# subscriptions differ from its row here.
CONSUMED_EVENTS: dict[str, tuple[str, ...]] = {
    "catalog": ("OrderPlaced.v1", "OrderCancelled.v1", "OrderExpired.v1"),
    "orders": ("ProductChanged.v1", "StockReserved.v1", "StockRejected.v1"),
    "cart": ("ProductChanged.v1", "StockChanged.v1", "OrderStatusChanged.v1.confirmed.cart"),
}


# The push log's declaration, identical wherever it is declared (producers' relays and gateway
# pods): RabbitMQ refuses a redeclaration with other arguments. To change retention in a running
# environment, apply a RabbitMQ policy (max-age, max-length-bytes) instead of editing these.
PUSH_STREAM_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "24h",
    "x-max-length-bytes": 2_000_000_000,
    "x-stream-max-segment-size-bytes": 50_000_000,
}


# The gateway's lookup of channels it has no history of (``GET /internal/channels/{channel}`` on
# the producing service) carries this shared key as ``Authorization: Bearer <key>``. The value
# below is a development default only: staging and production refuse to start with it.
DEV_INTERNAL_API_KEY = "dev-only-internal-key-not-for-production"
