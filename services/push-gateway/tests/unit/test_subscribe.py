"""Who may subscribe to what: the namespace table and the grants."""

from __future__ import annotations

import pytest

from push_gateway.node import Position


def _subscribe(harness, session, transport, channel, token="", **extra):
    harness.send(session, {"id": 7, "subscribe": {"channel": channel, "token": token, **extra}})
    for channel_ in list(harness.lookups):
        harness.lookups.remove(channel_)
        harness.resolve(channel_, None)
    replies = [m for m in transport.take() if m.get("id") == 7]
    assert len(replies) == 1, replies
    return replies[0]


def test_anonymous_may_subscribe_to_stock(harness):
    session, transport = harness.session("")
    reply = _subscribe(harness, session, transport, "stock:1")
    assert reply["subscribe"]["recoverable"] is True


def test_anonymous_may_not_subscribe_to_order(harness, tokens):
    session, transport = harness.session("")
    grant = tokens.grant("orders", user="", channel="order:1")
    assert _subscribe(harness, session, transport, "order:1", grant)["error"]["code"] == 103


def test_order_owner_with_grant_is_allowed(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    grant = tokens.grant("orders", user="alice", channel="order:42")
    reply = _subscribe(harness, session, transport, "order:42", grant)
    result = reply["subscribe"]
    assert result["expires"] is True and result["ttl"] > 3000


@pytest.mark.parametrize(
    "issuer, user, channel, asked",
    [
        ("orders", "bob", "order:42", "order:42"),  # grant for another user
        ("orders", "alice", "order:43", "order:42"),  # grant for another channel
        ("cart", "alice", "order:42", "order:42"),  # issuer not allowed to grant the namespace
        ("catalog", "alice", "order:42", "order:42"),
        ("identity", "alice", "order:42", "order:42"),
    ],
)
def test_order_grant_mismatches_are_103(harness, tokens, issuer, user, channel, asked):
    session, transport = harness.session(tokens.user("alice"))
    grant = tokens.grant(issuer, user=user, channel=channel)
    assert _subscribe(harness, session, transport, asked, grant)["error"]["code"] == 103


def test_order_without_grant_is_103(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    assert _subscribe(harness, session, transport, "order:42")["error"]["code"] == 103


def test_expired_grant_is_109(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    grant = tokens.raw("orders", {"sub": "alice", "channel": "order:42"}, ttl=10, now=harness.clock.now - 600)
    assert _subscribe(harness, session, transport, "order:42", grant)["error"]["code"] == 109


def test_forged_grant_is_103(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    grant = tokens.grant("orders", user="alice", channel="order:42")
    head, _payload, sig = grant.split(".")
    other = tokens.grant("orders", user="alice", channel="order:43").split(".")[1]
    assert _subscribe(harness, session, transport, "order:43", f"{head}.{other}.{sig[::-1]}")["error"]["code"] == 103


def test_guest_cart_grant_on_anonymous_connection(harness, tokens):
    session, transport = harness.session("")
    guest_grant = tokens.grant("cart", user="", channel="cart:g1")
    assert "subscribe" in _subscribe(harness, session, transport, "cart:g1", guest_grant)
    alices_grant = tokens.grant("cart", user="alice", channel="cart:g2")
    assert _subscribe(harness, session, transport, "cart:g2", alices_grant)["error"]["code"] == 103


def test_user_channel_only_for_that_user(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    assert "subscribe" in _subscribe(harness, session, transport, "user#alice")
    assert _subscribe(harness, session, transport, "user#bob")["error"]["code"] == 103
    anon, anon_transport = harness.session("")
    assert _subscribe(harness, anon, anon_transport, "user#")["error"]["code"] == 102


def test_tenant_members_by_claim_or_grant(harness, tokens):
    member, t1 = harness.session(tokens.user("alice", tenant="acme"))
    assert "subscribe" in _subscribe(harness, member, t1, "tenant:acme")
    outsider, t2 = harness.session(tokens.user("bob", tenant="globex"))
    assert _subscribe(harness, outsider, t2, "tenant:acme")["error"]["code"] == 103
    grant = tokens.grant("orders", user="bob", channel="tenant:acme")
    assert "subscribe" in _subscribe(harness, outsider, t2, "tenant:acme", grant)


def test_unknown_namespace_and_bad_names_are_102(harness):
    session, transport = harness.session("")
    assert _subscribe(harness, session, transport, "secret:1")["error"]["code"] == 102
    assert _subscribe(harness, session, transport, "nonamespace")["error"]["code"] == 102
    assert _subscribe(harness, session, transport, "")["error"]["code"] == 107


def test_already_subscribed_is_105_and_limit_is_106(keys_dir):
    from push_gateway.protocol.session import Limits
    from tests.unit.conftest import Harness

    harness = Harness(keys_dir, limits=Limits(max_channels=2), lookup=False)
    session, transport = harness.session("")
    assert "subscribe" in _subscribe(harness, session, transport, "stock:1")
    assert _subscribe(harness, session, transport, "stock:1")["error"]["code"] == 105
    assert "subscribe" in _subscribe(harness, session, transport, "stock:2")
    assert _subscribe(harness, session, transport, "stock:3")["error"]["code"] == 106


def test_unknown_channel_position_is_asked_once_for_concurrent_subscribers(harness, tokens):
    a, ta = harness.session("")
    b, tb = harness.session("")
    harness.send(a, {"id": 7, "subscribe": {"channel": "stock:9"}})
    harness.send(b, {"id": 7, "subscribe": {"channel": "stock:9"}})
    assert harness.lookups == ["stock:9"]
    harness.resolve("stock:9", Position(epoch="ep", offset=12, data={"available": 1}))
    for transport in (ta, tb):
        result = transport.take()[0]["subscribe"]
        assert (result["epoch"], result["offset"]) == ("ep", 12)
    c, tc = harness.session("")
    harness.send(c, {"id": 7, "subscribe": {"channel": "stock:9", "recover": True, "epoch": "ep", "offset": 11}})
    assert harness.lookups == ["stock:9"], "the answer is cached as the channel's meta"
    result = tc.take()[0]["subscribe"]
    assert result["recovered"] is True
    assert result["publications"] == [{"data": {"available": 1}, "offset": 12}]


def test_unreachable_producer_is_temporary_error_100(harness):
    session, transport = harness.session("")
    harness.send(session, {"id": 7, "subscribe": {"channel": "stock:10"}})
    harness.resolve("stock:10", None, ok=False)
    error = transport.take()[0]["error"]
    assert error["code"] == 100 and error["temporary"] is True
    assert "stock:10" not in session.subs


def test_unsubscribe_stops_delivery(harness):
    session, transport = harness.session("")
    harness.publish("stock:1", 1, {"a": 1})
    _subscribe(harness, session, transport, "stock:1")
    unsubscribe = {"id": 8, "unsubscribe": {"channel": "stock:1"}}
    assert harness.ask(session, transport, unsubscribe) == {"id": 8, "unsubscribe": {}}
    harness.publish("stock:1", 2, {"a": 2})
    assert transport.take() == []
    assert harness.node.hub.channels == {}


def test_sub_refresh_and_grant_expiry(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    harness.publish("order:5", 1, {"s": "pending"})
    _subscribe(harness, session, transport, "order:5", tokens.grant("orders", user="alice", channel="order:5", ttl=20))
    fresh = tokens.grant("orders", user="alice", channel="order:5", ttl=60)
    reply = harness.ask(session, transport, {"id": 9, "sub_refresh": {"channel": "order:5", "token": fresh}})
    assert reply["sub_refresh"]["expires"] and reply["sub_refresh"]["ttl"] > 50
    wrong = tokens.grant("orders", user="alice", channel="order:6", ttl=600)
    refresh = {"id": 10, "sub_refresh": {"channel": "order:5", "token": wrong}}
    assert harness.ask(session, transport, refresh)["error"]["code"] == 103
    harness.clock.now += 70
    harness.node.tick()
    pushes = [m["push"] for m in transport.take() if "push" in m]
    assert pushes == [{"channel": "order:5", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}]
    assert "order:5" not in session.subs and transport.closed is None


def test_admin_control_disconnects_and_unsubscribes_a_user(harness, tokens):
    alice, ta = harness.session(tokens.user("alice"))
    _bob, tb = harness.session(tokens.user("bob"))
    _subscribe(harness, alice, ta, "user#alice")
    assert harness.node.control({"type": "unsubscribe", "user": "alice", "channel": "user#alice"}) == 1
    harness.run_soon()
    assert [m["push"]["unsubscribe"]["code"] for m in ta.take() if "push" in m] == [2000]
    assert harness.node.control({"type": "disconnect", "user": "alice"}) == 1
    assert ta.closed[0] == 3503 and tb.closed is None
