"""Contracts round-trip, ignore unknown fields and reject missing required ones clearly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from flashline_contracts.batches import documents, join_bodies
from flashline_contracts.channels import (
    ChannelName,
    cart_channel,
    order_channel,
    stock_channel,
    tenant_channel,
    user_channel,
)
from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import (
    ALL_EVENTS,
    EVENT_TYPES,
    OrderPlaced,
    OrderStatusChanged,
    StockChanged,
    StockReserved,
)
from flashline_contracts.events.orders import OrderLine
from flashline_contracts.publications import PushPublication
from flashline_contracts.tokens import SubscriptionClaims, UserClaims

SAMPLES = {
    "StockChanged.v1": StockChanged(product_id=7, available=3, status="low", version=12),
    "OrderPlaced.v1": OrderPlaced(
        order_id=1,
        user_id="alice",
        lines=(OrderLine(product_id=7, quantity=2, unit_price_cents=1999),),
        total_cents=3998,
        currency="EUR",
    ),
}


def test_every_event_has_a_unique_versioned_routing_key() -> None:
    assert len(EVENT_TYPES) == len(ALL_EVENTS)
    assert all(key.endswith(".v1") for key in EVENT_TYPES)


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_envelope_round_trips_through_json(key: str) -> None:
    event = SAMPLES[key]
    envelope = EventEnvelope.wrap(event, producer="test", aggregate_id=1)
    wire = orjson.dumps(envelope.model_dump(mode="json"))
    parsed = EventEnvelope.model_validate(orjson.loads(wire))
    assert parsed == envelope
    assert parsed.routing_key == key
    assert parsed.open(type(event)) == event


def test_unknown_fields_are_ignored_at_every_level() -> None:
    envelope = EventEnvelope.wrap(SAMPLES["StockChanged.v1"], producer="catalog", aggregate_id=7)
    raw = envelope.model_dump(mode="json")
    raw["trace"] = "abc"
    raw["payload"]["warehouse"] = "north"
    parsed = EventEnvelope.model_validate(raw)
    assert parsed.open(StockChanged).available == 3


def test_missing_required_field_is_a_clear_validation_error() -> None:
    raw = EventEnvelope.wrap(SAMPLES["StockChanged.v1"], producer="catalog", aggregate_id=7).model_dump(mode="json")
    del raw["payload"]["available"]
    with pytest.raises(ValidationError) as err:
        EventEnvelope.model_validate(raw).open(StockChanged)
    assert err.value.errors()[0]["loc"] == ("available",)
    assert err.value.errors()[0]["type"] == "missing"


def test_envelope_refuses_to_open_as_another_type() -> None:
    envelope = EventEnvelope.wrap(SAMPLES["StockChanged.v1"], producer="catalog", aggregate_id=7)
    with pytest.raises(ValueError, match=r"not StockReserved\.v1"):
        envelope.open(StockReserved)


def test_negative_stock_is_rejected() -> None:
    with pytest.raises(ValidationError):
        StockChanged(product_id=1, available=-1, status="out", version=1)


def test_channel_builders_and_parser_agree() -> None:
    assert stock_channel(7) == "stock:7"
    assert order_channel(42) == "order:42"
    assert cart_channel("abc") == "cart:abc"
    assert tenant_channel("acme") == "tenant:acme"
    assert user_channel("42") == "user#42"
    assert ChannelName.parse("user#42") == ChannelName("user", "42", user="42")
    assert ChannelName.parse("order:42") == ChannelName("order", "42")
    assert ChannelName.parse("cart:a:b") == ChannelName("cart", "a:b")


@pytest.mark.parametrize("bad", ["", "nonamespace", ":7", "stock:", "#42", "user#", "stock: 7"])
def test_malformed_channels_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ChannelName.parse(bad)


def test_push_publication_round_trips_and_omits_no_required_field() -> None:
    pub = PushPublication(
        channel="cart:x",
        offset=3,
        epoch="ab12",
        data={"cart_id": "x"},
        exclude_client="c1",
        published_at=datetime.now(UTC),
    )
    assert PushPublication.model_validate_json(pub.model_dump_json()) == pub
    with pytest.raises(ValidationError):
        PushPublication.model_validate(
            {"channel": "cart:x", "offset": 0, "epoch": "e", "data": {}, "published_at": "2026-01-01T00:00:00Z"}
        )


def test_a_push_batch_is_an_array_of_publications_in_order_and_a_single_one_stays_an_object() -> None:
    at = datetime.now(UTC)
    pubs = [PushPublication(channel=f"stock:{n}", offset=n, epoch="e", data={"n": n}, published_at=at) for n in (1, 2)]
    bodies = [pub.model_dump_json().encode() for pub in pubs]
    assert join_bodies(bodies[:1]) == bodies[0]
    batch = orjson.loads(join_bodies(bodies))
    assert [PushPublication.model_validate(doc) for doc in documents(batch)] == pubs
    assert documents(orjson.loads(bodies[1])) == [orjson.loads(bodies[1])]


def test_a_status_change_is_published_under_its_status_and_origin_and_other_events_under_their_type() -> None:
    at = datetime.now(UTC)
    from_cart = OrderStatusChanged(order_id=1, user_id="u", cart_id="c", status="confirmed", version=2, at=at)
    direct = OrderStatusChanged(order_id=2, user_id="u", status="pending", version=1, at=at)
    envelope = EventEnvelope.wrap(from_cart, producer="orders", aggregate_id=1)
    assert envelope.topic == "OrderStatusChanged.v1.confirmed.cart"
    assert EventEnvelope.model_validate(orjson.loads(envelope.model_dump_json())).topic == envelope.topic
    assert EventEnvelope.wrap(direct, producer="orders", aggregate_id=2).topic == "OrderStatusChanged.v1.pending.direct"
    stock = StockChanged(product_id=7, available=3, status="low", version=1)
    assert EventEnvelope.wrap(stock, producer="catalog", aggregate_id=7).topic == "StockChanged.v1"


def test_token_claims_parse_and_default() -> None:
    claims = UserClaims.model_validate({"sub": "alice", "iss": "i", "aud": "flashline", "exp": 2, "iat": 1, "extra": 1})
    assert claims.role == "customer" and claims.channels == [] and claims.tenant is None
    grant = SubscriptionClaims.model_validate(
        {"sub": "", "channel": "cart:x", "iss": "flashline-cart", "aud": "flashline", "exp": 2, "iat": 1}
    )
    assert grant.sub == "" and grant.channel == "cart:x"
    with pytest.raises(ValidationError):
        SubscriptionClaims.model_validate({"sub": "a", "iss": "i", "aud": "a", "exp": 2, "iat": 1})


def test_envelope_requires_a_uuid_event_id() -> None:
    raw = EventEnvelope.wrap(SAMPLES["StockChanged.v1"], producer="c", aggregate_id=1).model_dump(mode="json")
    raw["event_id"] = "not-a-uuid"
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate(raw)
    raw["event_id"] = str(uuid.uuid4())
    assert EventEnvelope.model_validate(raw).event_id == uuid.UUID(raw["event_id"])


def test_the_consumed_events_are_known_contracts() -> None:
    """Each binding is a known event's routing key, or a pattern narrowing one (``<Type>.v<N>.<more>``)."""
    from flashline_contracts.envelope import IntegrationEvent
    from flashline_contracts.topology import CONSUMED_EVENTS

    known = {cls.routing_key() for cls in _all_subclasses(IntegrationEvent)}
    assert known == set(EVENT_TYPES)
    for service, bindings in CONSUMED_EVENTS.items():
        assert {".".join(binding.split(".")[:2]) for binding in bindings} <= known, service


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found
