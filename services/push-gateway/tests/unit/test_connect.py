"""Connect: anonymous and user tokens, every way a token can be wrong, server-side subscriptions."""

from __future__ import annotations

import base64
import json
import logging

import jwt

from push_gateway.protocol.codes import CloseCode
from push_gateway.protocol.session import Session, State


def _connect(harness, token):
    session, transport = harness.session(connect=False)
    harness.send(session, {"id": 1, "connect": {"token": token}})
    return session, transport, transport.take()


def test_anonymous_connect_reply_has_what_the_sdks_need(harness):
    session, transport, replies = _connect(harness, "")
    result = replies[0]["connect"]
    assert result["client"] == session.client_id and len(result["client"]) == 36
    assert result["ping"] == 25 and result["pong"] is True
    assert result["version"] and result["node"] == "test-node" and result["session"]
    assert "expires" not in result
    assert session.state is State.CONNECTED and transport.closed is None


def test_user_token_sets_expiry_and_ttl(harness, tokens):
    # Minted on the harness's clock: a second boundary between the two clocks would read 601.
    token = tokens.raw("identity", {"sub": "alice"}, ttl=600, now=harness.clock.now)
    session, _, replies = _connect(harness, token)
    result = replies[0]["connect"]
    assert result["expires"] is True and result["ttl"] == 600
    assert session.user == "alice"


def test_expired_token_is_error_109_and_connection_stays_open(harness, tokens):
    token = tokens.raw("identity", {"sub": "alice"}, ttl=60, now=harness.clock.now - 3600)
    session, transport, replies = _connect(harness, token)
    assert replies[0]["error"]["code"] == 109
    assert session.state is State.CONNECTING and transport.closed is None


def _forge(token: str, **header_changes) -> str:
    head, payload, sig = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header.update(header_changes)
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{payload}.{sig}"


def _assert_refused(harness, token):
    session, transport, replies = _connect(harness, token)
    assert replies[0]["error"]["code"] == 101, replies
    assert transport.closed == (3500, "invalid token")
    assert session.state is State.CLOSED


def test_forged_signature_refused(harness, tokens):
    head, payload, sig = tokens.user("alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_refused(harness, f"{head}.{forged_payload}.{sig}")


def test_alg_none_refused(harness, tokens):
    claims = jwt.decode(tokens.user("alice"), options={"verify_signature": False})
    token = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "dev-identity-1"})
    _assert_refused(harness, token)


def test_hs256_signed_with_public_key_refused(harness, tokens, keys_dir):
    claims = jwt.decode(tokens.user("alice"), options={"verify_signature": False})
    public_pem = json.loads((keys_dir / "trusted.json").read_text())["keys"][0]["public_key_pem"]
    header = {"alg": "HS256", "typ": "JWT", "kid": "dev-identity-1"}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signing_input = head + b"." + body
    sig = base64.urlsafe_b64encode(hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=")
    _assert_refused(harness, (signing_input + b"." + sig).decode())


def test_unknown_kid_refused(harness, tokens):
    _assert_refused(harness, _forge(tokens.user("alice"), kid="nobody-1"))


def test_grant_issuer_cannot_mint_connection_tokens(harness, tokens):
    _assert_refused(harness, tokens.raw("orders", {"sub": "alice"}))


def test_garbage_token_refused(harness):
    _assert_refused(harness, "not-a-jwt")


def test_first_command_must_be_connect(harness):
    session, transport = harness.session(connect=False)
    harness.send(session, {"id": 1, "subscribe": {"channel": "stock:1"}})
    assert transport.closed[0] == 3501


def test_server_side_subscriptions_from_channels_claim(harness, tokens):
    channels = ["user#alice", "tenant:acme", "order:9", "user#bob", "stock:5"]
    token = tokens.user("alice", tenant="acme", channels=channels)
    harness.publish("user#alice", 3, {"n": 3})
    _session, transport, replies = _connect(harness, token)
    assert harness.lookups, "unknown channels are looked up before the reply"
    assert replies == []  # deferred until the producer answered
    for channel in list(harness.lookups):
        harness.resolve(channel, None)
    result = transport.take()[0]["connect"]
    assert set(result["subs"]) == {"user#alice", "tenant:acme", "stock:5"}
    assert result["subs"]["user#alice"]["offset"] == 3 and result["subs"]["user#alice"]["recoverable"]
    harness.publish("user#alice", 4, {"n": 4})
    assert harness.pubs(transport.take(), "user#alice") == [{"data": {"n": 4}, "offset": 4}]


def test_refresh_extends_expiry_and_rejects_another_user(harness, tokens):
    session, transport = harness.session(tokens.user("alice", ttl=30))
    reply = harness.ask(session, transport, {"id": 2, "refresh": {"token": tokens.user("alice", ttl=900)}})
    assert reply["refresh"]["expires"] and reply["refresh"]["ttl"] > 800
    reply = harness.ask(session, transport, {"id": 3, "refresh": {"token": tokens.user("bob")}})
    assert reply["error"]["code"] == 101


def test_token_expiry_closes_with_3005_after_grace(harness, tokens):
    _session, transport = harness.session(tokens.user("alice", ttl=10))
    harness.clock.now += 12
    harness.node.tick()
    assert transport.closed is None  # within the grace
    harness.clock.now += 5
    harness.node.tick()
    assert transport.closed[0] == 3005


def test_pings_and_missing_pong_close_3012(harness):
    session, transport = harness.session("")
    harness.clock.now += 25
    harness.node.tick()
    assert transport.take() == [{}]
    harness.send(session, {})  # pong
    harness.clock.now += 25
    harness.node.tick()
    assert transport.take() == [{}]
    harness.clock.now += 11
    harness.node.tick()
    assert transport.closed[0] == 3012


def test_idle_sessions_are_ticked_only_when_a_deadline_is_due(harness, monkeypatch):
    sessions = [harness.session("") for _ in range(50)]
    ticked: list[Session] = []
    original = Session.tick
    monkeypatch.setattr(Session, "tick", lambda self, now: (ticked.append(self), original(self, now))[1])
    for _ in range(24):
        harness.clock.now += 1
        harness.node.tick()
    assert ticked == []  # nothing is due before the first ping
    harness.clock.now += 1
    harness.node.tick()
    assert sorted(map(id, ticked)) == sorted(id(s) for s, _ in sessions)
    assert all(t.take() == [{}] for _, t in sessions)


def test_a_grant_that_expires_before_the_next_ping_is_still_ended_on_time(harness, tokens):
    session, transport = harness.session(tokens.user("alice"))
    harness.publish("order:5", 1, {"s": "pending"})
    grant = tokens.grant("orders", user="alice", channel="order:5", ttl=3)
    reply = harness.ask(session, transport, {"id": 2, "subscribe": {"channel": "order:5", "token": grant}})
    assert reply["subscribe"]["expires"]
    for _ in range(3 + int(harness.node.limits.token_grace) + 2):
        harness.clock.now += 1
        harness.node.tick()
    pushes = [m["push"] for m in transport.take() if "push" in m]
    assert pushes == [{"channel": "order:5", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}]
    assert harness.clock.now < session.wake_at  # back to waiting for the ping


def test_stale_connection_without_connect_is_closed(harness):
    _session, transport = harness.session(connect=False)
    harness.clock.now += 11
    harness.node.tick()
    assert transport.closed[0] == 3502


def test_connect_log_and_metrics(harness):
    session, _transport = harness.session("")
    session.close(3001, "shutdown")
    text = harness.node.metrics.render().decode()
    assert 'flashline_gateway_disconnects_total{code="3001"} 1.0' in text


def test_without_log_connections_routine_connects_and_client_closes_are_at_debug_gateway_closes_at_info(
    keys_dir, caplog
):
    """An operator's choice (``GATEWAY_LOG_CONNECTIONS=false``); by default all four are at INFO."""
    from .conftest import Harness

    harness = Harness(keys_dir, log_connections=False)
    with caplog.at_level(logging.DEBUG, logger="push_gateway.node"):
        went_away, _ = harness.session()
        went_away.close(1001, "client went away")
        shed, _ = harness.session()
        shed.close(CloseCode.SLOW, "slow")
    levels = [(r.getMessage(), r.levelno, getattr(r, "code", None)) for r in caplog.records]
    assert levels == [
        ("connect", logging.DEBUG, None),
        ("disconnect", logging.DEBUG, 1001),
        ("connect", logging.DEBUG, None),
        ("disconnect", logging.INFO, CloseCode.SLOW),
    ]


def test_every_connect_and_disconnect_is_logged_at_info_by_default(harness, caplog):
    with caplog.at_level(logging.INFO, logger="push_gateway.node"):
        session, _ = harness.session()
        session.close(1000, "bye")
    assert [(r.getMessage(), r.levelno) for r in caplog.records] == [
        ("connect", logging.INFO),
        ("disconnect", logging.INFO),
    ]
