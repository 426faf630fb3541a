"""The official centrifuge-python SDK against a running gateway fed through real RabbitMQ."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import unique
from .sdk import SubEvents, new_client


async def subscribed(client, channel: str, **kwargs):
    events = SubEvents()
    sub = client.new_subscription(channel, events=events, **kwargs)
    await sub.subscribe()
    return sub, events


async def test_anonymous_stock_subscription_receives_publications(gateway, publisher):
    channel = unique("stock:")
    client, _ = new_client(gateway.ws_url)
    await client.connect()
    _sub, events = await subscribed(client, channel)
    ctx = await events.next_subscribed()
    assert ctx.recoverable
    await publisher.publish(channel, 1, {"available": 5})
    await publisher.publish(channel, 2, {"available": 4})
    received = []
    while len(received) < 2 or received[-1].data["available"] != 4:
        received.append(await events.next_pub())
    assert received[-1].offset == 2
    await client.disconnect()


async def test_order_subscription_for_owner_and_103_for_another_user(gateway, publisher, tokens):
    channel = unique("order:")
    owner, _ = new_client(gateway.ws_url, tokens.user("alice"))
    await owner.connect()
    _sub, events = await subscribed(owner, channel, token=tokens.grant("orders", user="alice", channel=channel))
    await events.next_subscribed()
    other, _ = new_client(gateway.ws_url, tokens.user("bob"))
    await other.connect()
    stolen = SubEvents()
    alices_grant = tokens.grant("orders", user="alice", channel=channel)
    bob_sub = other.new_subscription(channel, events=stolen, token=alices_grant)
    await bob_sub.subscribe()
    refused = await asyncio.wait_for(stolen.unsubscribed.get(), 5)
    assert refused.code == 103
    await publisher.publish(channel, 1, {"status": "confirmed"})
    assert (await events.next_pub()).data == {"status": "confirmed"}
    await stolen.no_pub(0.3)
    await owner.disconnect()
    await other.disconnect()


@pytest.mark.parametrize("kind", ["forged", "wrong_issuer", "alg_none", "garbage"])
async def test_bad_connection_tokens_are_refused(gateway, tokens, kind):
    import jwt

    good = tokens.user("alice")
    if kind == "forged":
        head, _payload, sig = good.split(".")
        token = f"{head}.{tokens.user('mallory').split('.')[1]}.{sig}"
    elif kind == "wrong_issuer":
        token = tokens.raw("cart", {"sub": "alice"})
    elif kind == "alg_none":
        claims = jwt.decode(good, options={"verify_signature": False})
        token = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "dev-identity-1"})
    else:
        token = "garbage"
    client, events = new_client(gateway.ws_url, token)
    await client.connect()
    ctx = await asyncio.wait_for(events.disconnected.get(), 5)
    assert ctx.code == 101
    assert events.connected == 0


async def test_expired_connection_token_gets_a_fresh_one(gateway, tokens):
    import time

    expired = tokens.raw("identity", {"sub": "alice"}, ttl=10, now=time.time() - 600)
    fetched = []

    async def get_token() -> str:
        fetched.append(1)
        return tokens.user("alice")

    client, events = new_client(gateway.ws_url, expired, get_token=get_token)
    await client.connect()
    await client.ready(5)
    assert fetched and events.connected == 1
    await client.disconnect()


async def test_stream_recovery_after_reconnect(gateway, publisher, tokens):
    channel = unique("order:")
    grant = tokens.grant("orders", user="alice", channel=channel)
    client, _ = new_client(gateway.ws_url, tokens.user("alice"))
    await client.connect()
    _sub, events = await subscribed(client, channel, token=grant)
    await events.next_subscribed()
    await publisher.publish(channel, 1, {"status": "pending"})
    assert (await events.next_pub()).offset == 1
    await client.disconnect()
    for offset, status in ((2, "confirmed"), (3, "paid"), (4, "packed")):
        await publisher.publish(channel, offset, {"status": status})
    await asyncio.sleep(0.3)
    await client.connect()
    ctx = await events.next_subscribed()
    assert ctx.was_recovering and ctx.recovered
    got = [await events.next_pub() for _ in range(3)]
    assert [(p.offset, p.data["status"]) for p in got] == [(2, "confirmed"), (3, "paid"), (4, "packed")]
    await client.disconnect()


async def test_cache_recovery_after_reconnect_returns_latest_state(gateway, publisher, tokens):
    channel = unique("cart:")
    client, _ = new_client(gateway.ws_url)
    await client.connect()
    _sub, events = await subscribed(client, channel, token=tokens.grant("cart", user="", channel=channel))
    await events.next_subscribed()
    await publisher.publish(channel, 1, {"version": 1})
    assert (await events.next_pub()).offset == 1
    await client.disconnect()
    for offset in (2, 3, 4):
        await publisher.publish(channel, offset, {"version": offset})
    await asyncio.sleep(0.3)
    await client.connect()
    ctx = await events.next_subscribed()
    assert ctx.recovered
    latest = await events.next_pub()
    assert (latest.offset, latest.data) == (4, {"version": 4})
    await events.no_pub(0.3)
    await client.disconnect()


async def test_cart_echo_suppression(gateway, publisher, tokens):
    channel = unique("cart:")
    tabs = []
    for _ in range(2):
        client, _ = new_client(gateway.ws_url)
        await client.connect()
        await client.ready(5)
        _sub, events = await subscribed(client, channel, token=tokens.grant("cart", user="", channel=channel))
        await events.next_subscribed()
        tabs.append((client, events))
    (maker, maker_events), (_other, other_events) = tabs
    await publisher.publish(channel, 1, {"version": 1}, exclude_client=maker.client_id)
    assert (await other_events.next_pub()).offset == 1
    await publisher.publish(channel, 2, {"version": 2})
    assert (await maker_events.next_pub()).offset == 2, "the maker skipped offset 1 only"
    assert (await other_events.next_pub()).offset == 2
    for client, _ in tabs:
        await client.disconnect()


async def test_connection_token_refresh_keeps_the_connection(gateway, publisher, tokens):
    channel = unique("stock:")
    refreshed = []

    async def get_token() -> str:
        refreshed.append(1)
        return tokens.user("alice", ttl=60)

    client, events = new_client(gateway.ws_url, tokens.user("alice", ttl=2), get_token=get_token)
    await client.connect()
    _sub, sub_events = await subscribed(client, channel)
    await sub_events.next_subscribed()
    await asyncio.sleep(4.5)  # past expiry + grace: without refresh the gateway would close with 3005
    assert refreshed and events.disconnected.empty() and events.connected == 1
    await publisher.publish(channel, 1, {"available": 1})
    assert (await sub_events.next_pub()).offset == 1
    await client.disconnect()


async def test_unknown_channel_position_comes_from_the_producer(gateway, fake_producer):
    channel = unique("stock:")
    fake_producer.positions[channel] = {"offset": 41, "epoch": "prod-epoch", "data": {"available": 2}}
    client, _ = new_client(gateway.ws_url)
    await client.connect()
    _sub, events = await subscribed(client, channel)
    ctx = await events.next_subscribed()
    assert (ctx.stream_position.offset, ctx.stream_position.epoch) == (41, "prod-epoch")
    assert fake_producer.requests.count(channel) == 1
    await client.disconnect()


async def test_admin_api_revokes_on_every_pod(gateway, tokens):
    import httpx

    from tests.integration.conftest import ADMIN_KEY

    user = unique("u")
    client, events = new_client(gateway.ws_url, tokens.user(user))
    await client.connect()
    _sub, sub_events = await subscribed(client, f"user#{user}")
    await sub_events.next_subscribed()
    async with httpx.AsyncClient(base_url=gateway.admin_url) as http:
        assert (await http.post("/admin/disconnect", json={"user": user})).status_code == 401
        response = await http.post(
            "/admin/unsubscribe",
            json={"user": user, "channel": f"user#{user}"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert response.status_code == 202
        assert (await asyncio.wait_for(sub_events.unsubscribed.get(), 5)).code == 2000
        await http.post("/admin/disconnect", json={"user": user}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert (await asyncio.wait_for(events.disconnected.get(), 5)).code == 3503
