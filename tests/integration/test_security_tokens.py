"""Tokens at the gateway: every forged, stale or misdirected token is refused with its code, and logged.

Driven over raw WebSockets against the stack's first gateway process; the refusal must show up
in that process's structured log (message ``denied`` with the method, code and reason).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from flashline_auth.keys import SigningKey
from flashline_service.testing import eventually

from .conftest import Stack
from .security_helpers import Forge, Raw, connected, error_code, gateway_log, hs256, logged, unsigned

UNAUTHORIZED, PERMISSION_DENIED, TOKEN_EXPIRED = 101, 103, 109
INVALID_TOKEN_CLOSE = 3500


def _denials(stack: Stack) -> int:
    return sum(1 for r in gateway_log(stack) if r.get("event") == "denied")


async def _denied_logged(stack: Stack, before: int, method: str, code: int, reason: str) -> None:
    """A denial logged after the first ``before`` ones, for ``method`` with ``code`` and ``reason``."""

    def new_match() -> bool:
        denials = [r for r in gateway_log(stack) if r.get("event") == "denied"][before:]
        return any(
            r.get("method") == method and r.get("code") == code and reason.lower() in str(r.get("reason", "")).lower()
            for r in denials
        )

    await eventually(new_match, timeout=5)


# ---- connection tokens -------------------------------------------------------------------------


def _forged(f: Forge) -> str:
    return f.user("alice", key=f.impostor("identity"))


def _alg_none(f: Forge) -> str:
    return unsigned({"alg": "none", "typ": "JWT", "kid": f.key("identity").kid}, f.base_claims("identity", sub="alice"))


def _hs256_public_key(f: Forge) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": f.key("identity").kid}
    return hs256(header, f.base_claims("identity", sub="alice"), f.public_pem("identity"))


def _unknown_kid(f: Forge) -> str:
    return f.user("alice", key=SigningKey.generate(kid="dev-identity-999", issuer="flashline-identity"))


def _no_kid(f: Forge) -> str:
    return unsigned({"alg": "EdDSA", "typ": "JWT"}, f.base_claims("identity", sub="alice"), b"x" * 64)


def _expired(f: Forge) -> str:
    return f.user("alice", now=time.time() - 3600, ttl=600)


def _not_yet_valid(f: Forge) -> str:
    return f.user("alice", claims={"nbf": int(time.time()) + 600})


def _wrong_audience(f: Forge) -> str:
    return f.user("alice", audience="flashline-staging")


def _wrong_issuer(f: Forge) -> str:
    return f.user("alice", claims={"iss": "flashline-orders"})


def _grant_issuer_as_user_token(f: Forge) -> str:
    return f.mint("orders", {"sub": "alice", "role": "customer"})


def _garbage(f: Forge) -> str:
    return "not.a.jwt"


CONNECT_CASES: list[tuple[str, Callable[[Forge], str], int, str]] = [
    ("forged signature", _forged, UNAUTHORIZED, "signature"),
    ("alg none", _alg_none, UNAUTHORIZED, "algorithm 'none'"),
    ("HS256 signed with the public key", _hs256_public_key, UNAUTHORIZED, "algorithm 'HS256'"),
    ("unknown kid", _unknown_kid, UNAUTHORIZED, "unknown kid"),
    ("no kid", _no_kid, UNAUTHORIZED, "no kid"),
    ("expired", _expired, TOKEN_EXPIRED, "expired"),
    ("not yet valid", _not_yet_valid, UNAUTHORIZED, "not yet valid"),
    ("wrong audience", _wrong_audience, UNAUTHORIZED, "audience"),
    ("wrong issuer", _wrong_issuer, UNAUTHORIZED, "issuer"),
    ("grant issuer minting a user token", _grant_issuer_as_user_token, UNAUTHORIZED, "mints grants"),
    ("garbage", _garbage, UNAUTHORIZED, "malformed"),
]


@pytest.mark.parametrize(("case", "make", "code", "reason"), CONNECT_CASES, ids=[c[0] for c in CONNECT_CASES])
async def test_bad_connection_token_refused_and_logged(
    stack: Stack, case: str, make: Callable[[Forge], str], code: int, reason: str
) -> None:
    before = _denials(stack)
    raw = await Raw.open(stack.gateway_urls[0])
    try:
        reply = await raw.call("connect", {"token": make(Forge(stack))})
        assert error_code(reply) == code, (case, reply)
        if code == UNAUTHORIZED:  # terminal: the SDK must not retry with the same token
            assert await raw.closed() == INVALID_TOKEN_CLOSE
        else:  # 109: the SDK fetches a fresh token; nothing was subscribed meanwhile
            assert not raw.pushes
    finally:
        await raw.close()
    await _denied_logged(stack, before, "connect", code, reason)


async def test_refresh_with_another_users_token_refused_and_logged(stack: Stack) -> None:
    forge = Forge(stack)
    before = _denials(stack)
    raw = await connected(stack.gateway_urls[0], forge.user("alice"))
    try:
        reply = await raw.call("refresh", {"token": forge.user("bob")})
        assert error_code(reply) == UNAUTHORIZED, reply
        reply = await raw.call("refresh", {"token": _forged(forge)})
        assert error_code(reply) == UNAUTHORIZED, reply
    finally:
        await raw.close()
    await _denied_logged(stack, before, "refresh", UNAUTHORIZED, "another user")
    await _denied_logged(stack, before, "refresh", UNAUTHORIZED, "signature")


# ---- subscription grants -----------------------------------------------------------------------


def _order() -> str:
    return f"order:{uuid.uuid4().int % 10**9 + 1}"


def _cart() -> str:
    return f"cart:{uuid.uuid4().hex[:22]}"


SUBSCRIBE_CASES: list[tuple[str, Callable[[Forge], tuple[str, str]], int, str]] = [
    ("no grant", lambda f: (_order(), ""), PERMISSION_DENIED, "needs a subscription token"),
    (
        "grant for another channel",
        lambda f: (_order(), f.grant("orders", user="alice", channel=_order())),
        PERMISSION_DENIED,
        "grant is for",
    ),
    (
        "grant for another user",
        lambda f: (ch := _order(), f.grant("orders", user="bob", channel=ch)),
        PERMISSION_DENIED,
        "another user",
    ),
    (
        "guest grant on a signed-in connection",
        lambda f: (ch := _cart(), f.grant("cart", user="", channel=ch)),
        PERMISSION_DENIED,
        "another user",
    ),
    (
        "cart grant for an order channel",
        lambda f: (ch := _order(), f.grant("cart", user="alice", channel=ch)),
        PERMISSION_DENIED,
        "may not grant 'order'",
    ),
    (
        "catalog granting a cart",
        lambda f: (ch := _cart(), f.grant("catalog", user="alice", channel=ch)),
        PERMISSION_DENIED,
        "may not grant 'cart'",
    ),
    (
        "identity key minting a grant",
        lambda f: (ch := _order(), f.grant("identity", user="alice", channel=ch)),
        PERMISSION_DENIED,
        "may not grant 'order'",
    ),
    (
        "forged grant",
        lambda f: (ch := _order(), f.grant("orders", user="alice", channel=ch, key=f.impostor("orders"))),
        PERMISSION_DENIED,
        "signature",
    ),
    (
        "alg none grant",
        lambda f: (
            ch := _order(),
            unsigned({"alg": "none", "kid": f.key("orders").kid}, f.base_claims("orders", sub="alice", channel=ch)),
        ),
        PERMISSION_DENIED,
        "algorithm 'none'",
    ),
    (
        "HS256 grant with the public key",
        lambda f: (
            ch := _order(),
            hs256(
                {"alg": "HS256", "kid": f.key("orders").kid},
                f.base_claims("orders", sub="alice", channel=ch),
                f.public_pem("orders"),
            ),
        ),
        PERMISSION_DENIED,
        "algorithm 'HS256'",
    ),
    (
        "expired grant",
        lambda f: (ch := _order(), f.grant("orders", user="alice", channel=ch, now=time.time() - 3600, ttl=600)),
        TOKEN_EXPIRED,
        "expired",
    ),
    (
        "not-yet-valid grant",
        lambda f: (ch := _order(), f.mint("orders", {"sub": "alice", "channel": ch, "nbf": int(time.time()) + 600})),
        PERMISSION_DENIED,
        "not yet valid",
    ),
    (
        "grant for another audience",
        lambda f: (ch := _order(), f.grant("orders", user="alice", channel=ch, audience="flashline-staging")),
        PERMISSION_DENIED,
        "audience",
    ),
    (
        "grant with a foreign issuer claim",
        lambda f: (ch := _order(), f.mint("orders", {"sub": "alice", "channel": ch, "iss": "flashline-cart"})),
        PERMISSION_DENIED,
        "issuer",
    ),
    ("another user's personal channel", lambda f: ("user#bob", ""), PERMISSION_DENIED, "limited to another user"),
    ("another tenant", lambda f: ("tenant:globex", ""), PERMISSION_DENIED, "needs a subscription token"),
    ("unknown namespace", lambda f: ("admin:1", ""), 102, "unknown namespace"),
]


@pytest.mark.parametrize(("case", "make", "code", "reason"), SUBSCRIBE_CASES, ids=[c[0] for c in SUBSCRIBE_CASES])
async def test_bad_subscription_grant_refused_and_logged(
    stack: Stack, case: str, make: Callable[[Forge], tuple[str, str]], code: int, reason: str
) -> None:
    forge = Forge(stack)
    channel, token = make(forge)
    before = _denials(stack)
    raw = await connected(stack.gateway_urls[0], forge.user("alice", claims={"tenant": "acme"}))
    try:
        reply = await raw.call(
            "subscribe", {"channel": channel, "token": token, "recover": True, "epoch": "", "offset": 0}
        )
        assert error_code(reply) == code, (case, reply)
        assert "subscribe" not in reply
        # the connection survives a refused subscription, and still holds nothing
        reply = await raw.call("history", {"channel": channel, "limit": 10})
        assert error_code(reply) == PERMISSION_DENIED, reply
    finally:
        await raw.close()
    await _denied_logged(stack, before, "subscribe", code, reason)


async def test_sub_refresh_cannot_swap_in_a_grant_for_another_channel(stack: Stack) -> None:
    forge = Forge(stack)
    channel, other = _cart(), _cart()
    before = _denials(stack)
    raw = await connected(stack.gateway_urls[0], forge.user("alice"))
    try:
        reply = await raw.call(
            "subscribe", {"channel": channel, "token": forge.grant("cart", user="alice", channel=channel)}
        )
        assert "subscribe" in reply, reply
        for bad in (
            forge.grant("cart", user="alice", channel=other),
            forge.grant("cart", user="bob", channel=channel),
            forge.grant("catalog", user="alice", channel=channel),
        ):
            reply = await raw.call("sub_refresh", {"channel": channel, "token": bad})
            assert error_code(reply) == PERMISSION_DENIED, reply
    finally:
        await raw.close()
    await _denied_logged(stack, before, "sub_refresh", PERMISSION_DENIED, "grant is for")
    await _denied_logged(stack, before, "sub_refresh", PERMISSION_DENIED, "another user")
    await _denied_logged(stack, before, "sub_refresh", PERMISSION_DENIED, "may not grant")


async def test_server_side_channels_in_a_user_token_grant_nothing_protected(stack: Stack) -> None:
    """A connection token asking for others' channels at connect gets none of them (and it is logged)."""
    forge = Forge(stack)
    wanted = [_order(), _cart(), "user#alice", "tenant:acme"]
    raw = await Raw.open(stack.gateway_urls[0])
    try:
        reply = await raw.call("connect", {"token": forge.user("bob", claims={"channels": wanted})})
        assert "connect" in reply, reply
        assert not reply["connect"].get("subs"), reply
    finally:
        await raw.close()
    for channel in wanted:
        await logged(
            stack,
            lambda r, ch=channel: (
                r.get("event") == "server-side subscription refused"
                and r.get("channel") == ch
                and r.get("user") == "bob"
            ),
        )
