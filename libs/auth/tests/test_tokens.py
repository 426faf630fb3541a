"""Verification refuses every forged, confused or expired token; minting round-trips."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from flashline_auth import KeySet, SigningKey, TokenExpired, TokenInvalid, TokenMinter, TokenVerifier, UntrustedIssuer
from flashline_auth.dev import ensure_dev_keys, load_dev_signing_key
from flashline_auth.dev_identity import user_token
from flashline_contracts.tokens import SubscriptionClaims, UserClaims

AUD = "flashline"


@pytest.fixture(scope="module")
def identity() -> SigningKey:
    return SigningKey.generate(kid="id-1", issuer="flashline-identity")


@pytest.fixture(scope="module")
def verifier(identity: SigningKey) -> TokenVerifier:
    es = SigningKey(kid="es-1", issuer="flashline-cart", private_key=ec.generate_private_key(ec.SECP256R1()))
    return TokenVerifier(KeySet.of([identity.trusted(), es.trusted(["cart"])]), audience=AUD)


def mint(key: SigningKey, **claims: object) -> str:
    token, _ = TokenMinter(key, audience=AUD, ttl_seconds=60).mint({"sub": "alice", **claims})
    return token


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_token_verifies_to_typed_claims(identity: SigningKey, verifier: TokenVerifier) -> None:
    claims = verifier.verify(mint(identity, role="staff", tenant="acme"), UserClaims)
    assert (claims.sub, claims.role, claims.tenant, claims.iss) == ("alice", "staff", "acme", "flashline-identity")


def test_es256_keys_work_too() -> None:
    key = SigningKey(kid="es", issuer="x", private_key=ec.generate_private_key(ec.SECP256R1()))
    verifier = TokenVerifier(KeySet.of([key.trusted()]), audience=AUD)
    assert verifier.verify(mint(key), UserClaims).sub == "alice"


def test_rs256_keys_work_too_and_short_rsa_keys_are_refused() -> None:
    key = SigningKey.generate(kid="rs", issuer="x", algorithm="RS256")
    verifier = TokenVerifier(KeySet.of([key.trusted()]), audience=AUD)
    assert verifier.verify(mint(key), UserClaims).sub == "alice"
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048 bits"):
        SigningKey(kid="weak", issuer="x", private_key=short).trusted()
    pem = short.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="2048 bits"):
        SigningKey.from_pem(pem, kid="weak", issuer="x")
    entry = {
        **key.trusted().to_json(),
        "public_key_pem": short.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    with pytest.raises(ValueError, match="2048 bits"):
        KeySet.from_json({"keys": [entry]})


def test_forged_signature_is_refused(identity: SigningKey, verifier: TokenVerifier) -> None:
    impostor = SigningKey.generate(kid=identity.kid, issuer=identity.issuer)
    with pytest.raises(TokenInvalid, match="Signature"):
        verifier.verify(mint(impostor), UserClaims)


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    claims = {"sub": "alice", "iss": "flashline-identity", "aud": AUD, "iat": now, "exp": now + 60}
    token = f"{b64({'alg': 'none', 'kid': 'id-1'})}.{b64(claims)}."
    with pytest.raises(TokenInvalid, match="not allowed"):
        verifier.verify(token, UserClaims)


def test_hs256_signed_with_the_public_key_is_refused(identity: SigningKey, verifier: TokenVerifier) -> None:
    public_pem = identity.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"sub": "alice", "iss": identity.issuer, "aud": AUD, "iat": now, "exp": now + 60}
    header = b64({"alg": "HS256", "kid": identity.kid, "typ": "JWT"})
    body = b64(claims)
    import hashlib
    import hmac

    sig = (
        base64.urlsafe_b64encode(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(TokenInvalid, match="not allowed"):
        verifier.verify(f"{header}.{body}.{sig}", UserClaims)


def test_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    stranger = SigningKey.generate(kid="nobody", issuer="flashline-identity")
    with pytest.raises(TokenInvalid, match="unknown kid"):
        verifier.verify(mint(stranger), UserClaims)


def test_expired_token_is_its_own_error(identity: SigningKey, verifier: TokenVerifier) -> None:
    token, _ = TokenMinter(identity, audience=AUD, ttl_seconds=60).mint({"sub": "a"}, now=time.time() - 3600)
    with pytest.raises(TokenExpired):
        verifier.verify(token, UserClaims)


def test_not_yet_valid_is_refused(identity: SigningKey, verifier: TokenVerifier) -> None:
    with pytest.raises(TokenInvalid, match="not yet valid"):
        verifier.verify(mint(identity, nbf=int(time.time()) + 600), UserClaims)


def test_wrong_audience_is_refused(identity: SigningKey) -> None:
    token, _ = TokenMinter(identity, audience="other", ttl_seconds=60).mint({"sub": "a"})
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD)
    with pytest.raises(TokenInvalid, match=r"(?i)audience"):
        verifier.verify(token, UserClaims)


def test_token_claiming_another_issuer_than_its_key_is_refused(identity: SigningKey, verifier: TokenVerifier) -> None:
    with pytest.raises(UntrustedIssuer):
        verifier.verify(mint(identity, iss="flashline-orders"), UserClaims)


def test_missing_required_claims_are_refused(identity: SigningKey, verifier: TokenVerifier) -> None:
    token = jwt.encode(
        {"sub": "a", "aud": AUD, "iss": identity.issuer},
        identity.private_key,
        algorithm="EdDSA",
        headers={"kid": identity.kid},
    )
    with pytest.raises(TokenInvalid, match="exp"):
        verifier.verify(token, UserClaims)


def test_subscription_token_names_exactly_one_channel(identity: SigningKey, verifier: TokenVerifier) -> None:
    token, expires = TokenMinter(identity, audience=AUD, ttl_seconds=120).subscription_token(
        user_id="", channel="cart:x"
    )
    claims = verifier.verify(token, SubscriptionClaims)
    assert claims.channel == "cart:x" and claims.sub == ""
    assert abs(expires.timestamp() - time.time() - 120) < 5


def test_keyset_round_trips_and_refuses_duplicates(identity: SigningKey) -> None:
    keys = KeySet.of([identity.trusted(["order"])])
    again = KeySet.from_json(keys.to_json())
    assert again.get(identity.kid) == keys.get(identity.kid)
    with pytest.raises(ValueError, match="duplicate"):
        KeySet.of([identity.trusted(), identity.trusted()])


def test_dev_keys_are_stable_and_dev_identity_tokens_verify(tmp_path) -> None:
    folder = ensure_dev_keys(tmp_path)
    first = (folder / "orders.pem").read_bytes()
    ensure_dev_keys(tmp_path)
    assert (folder / "orders.pem").read_bytes() == first
    assert oct((folder / "orders.pem").stat().st_mode & 0o777) == "0o600"
    keys = KeySet.load(folder / "trusted.json")
    assert keys.get("dev-orders-1").namespaces == ("order", "user", "tenant")
    assert keys.get("dev-identity-1").namespaces == ()
    assert keys.get("dev-identity-1").algorithm == "RS256"  # as identity providers sign
    assert keys.get("dev-orders-1").algorithm == "EdDSA"
    token = user_token(str(folder), user="bob", role="staff", tenant="acme")
    claims = TokenVerifier(keys, audience=AUD).verify(token, UserClaims)
    assert (claims.sub, claims.role, claims.tenant) == ("bob", "staff", "acme")
    assert load_dev_signing_key(folder, "cart").issuer == "flashline-cart"


@pytest.mark.parametrize(
    "token",
    ["", "no-dots", ".payload.sig", "!!!.payload.sig", "WzEsMl0.payload.sig", "bm90IGpzb24.payload.sig"],
    ids=["empty", "one-segment", "empty-header", "not-base64", "header-is-a-list", "header-not-json"],
)
def test_malformed_tokens_are_invalid_not_crashes(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenInvalid, match=r"malformed|no kid"):
        verifier.verify(token, UserClaims)


# ---- the verified-token cache (opt-in: ``cache_size``) -----------------------------------------------


def counting(verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full verification (signature and claims) ``verifier`` does."""
    calls: list[str] = []
    decode = verifier.decode

    def spy(token: str, **kwargs: object) -> object:
        calls.append(token)
        return decode(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verifier, "decode", spy)
    return calls


def test_a_cached_token_is_verified_once(identity: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD, cache_size=8)
    calls = counting(verifier, monkeypatch)
    token = mint(identity, role="staff")
    first = verifier.verify(token, UserClaims)
    assert verifier.verify(token, UserClaims) == first
    assert calls == [token]


def test_an_expired_token_is_refused_even_when_cached(identity: SigningKey) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD, leeway_seconds=0, cache_size=8)
    token, expires_at = TokenMinter(identity, audience=AUD, ttl_seconds=1).mint({"sub": "alice"})
    assert verifier.verify(token, UserClaims).sub == "alice"
    time.sleep(max(0.0, expires_at.timestamp() - time.time()) + 0.05)
    with pytest.raises(TokenExpired):
        verifier.verify(token, UserClaims)


def test_the_cache_follows_its_clock_and_leeway(identity: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    verifier = TokenVerifier(
        KeySet.of([identity.trusted()]), audience=AUD, leeway_seconds=5, cache_size=8, clock=lambda: now[0]
    )
    calls = counting(verifier, monkeypatch)
    token, expires_at = TokenMinter(identity, audience=AUD, ttl_seconds=60).mint({"sub": "alice"})
    verifier.verify(token, UserClaims)
    now[0] = expires_at.timestamp() + 4.9  # within the leeway: still served
    verifier.verify(token, UserClaims)
    assert len(calls) == 1
    now[0] = expires_at.timestamp() + 5  # past it: the full check decides again
    verifier.verify(token, UserClaims)  # (the real clock says it is valid)
    assert len(calls) == 2


def test_forged_and_refused_tokens_are_never_cached(identity: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD, cache_size=8)
    genuine = mint(identity)
    verifier.verify(genuine, UserClaims)
    header, payload, signature = genuine.split(".")
    impostor = SigningKey.generate(kid=identity.kid, issuer=identity.issuer)
    forged = mint(impostor)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    tampered = f"{header}.{b64({**claims, 'role': 'staff'})}.{signature}"
    swapped = f"{header}.{payload}.{forged.split('.')[2]}"
    for token in (forged, tampered, swapped, forged):
        with pytest.raises(TokenInvalid):
            verifier.verify(token, UserClaims)
    calls = counting(verifier, monkeypatch)
    with pytest.raises(TokenInvalid):
        verifier.verify(forged, UserClaims)
    assert calls == [forged]  # refused again by the full check, not remembered either way


def test_a_key_change_empties_the_cache(identity: SigningKey) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD, cache_size=8)
    token = mint(identity)
    verifier.verify(token, UserClaims)
    verifier.use(KeySet.of([SigningKey.generate(kid="other", issuer="x").trusted()]))
    with pytest.raises(TokenInvalid, match="unknown kid"):
        verifier.verify(token, UserClaims)


def test_the_cache_is_bounded(identity: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD, cache_size=2)
    calls = counting(verifier, monkeypatch)
    a, b, c = mint(identity), mint(identity), mint(identity)
    for token in (a, b, a, c, a, b):  # c evicts b (least recently used), then b evicts c
        verifier.verify(token, UserClaims)
    assert calls == [a, b, c, b]


def test_no_cache_by_default(identity: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(KeySet.of([identity.trusted()]), audience=AUD)
    calls = counting(verifier, monkeypatch)
    token = mint(identity)
    verifier.verify(token, UserClaims)
    verifier.verify(token, UserClaims)
    assert calls == [token, token]
