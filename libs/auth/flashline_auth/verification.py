"""Verify JWTs against a key set: algorithm pinned per key, key chosen by ``kid``.

The compact JWS is checked here rather than by ``jwt.decode``: PyJWT tests every base64url
character in a Python generator and merges option dicts on each call, which cost the push gateway
~34 us per connect around the signature check itself (~9 us here; the Ed25519 check is ~110 us).
The checks are PyJWT's for our three algorithms, and a differential test
(tests/test_jws_differential.py) holds the two to the same verdicts. PyJWT still mints tokens.
"""

from __future__ import annotations

import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from pydantic import BaseModel, ValidationError

from flashline_auth.errors import TokenExpired, TokenInvalid, UntrustedIssuer
from flashline_auth.keys import KeySet, PublicKey, TrustedKey

M = TypeVar("M", bound=BaseModel)

_REQUIRED = ["exp", "iat", "iss", "aud", "sub"]

# base64url -> base64 for binascii; '+' and '/' are not base64url, so they become a refused '!'
_TO_BASE64 = bytes.maketrans(b"-_+/", b"+/!!")
# the last character of an unpadded segment carries 2 (length % 4 == 2) or 4 (== 3) bits of data:
# the rest must be zero, or two spellings would decode to the same bytes (PyJWT refuses those)
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_UNDERSTOOD_CRIT = frozenset({"b64"})  # as PyJWT: "b64" may be critical, but only true (false is refused)
_ECDSA_SHA256 = ec.ECDSA(SHA256())
_PKCS1V15, _SHA256 = PKCS1v15(), SHA256()


def _b64url(segment: bytes, name: str) -> bytes:
    """A base64url segment, unpadded or correctly padded, canonical; decoded in C."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    tail = len(stripped) % 4
    if (
        (padding and (padding > 2 or len(segment) % 4))
        or tail == 1
        or (tail and stripped[-1] not in _CANONICAL_LAST[tail])
    ):
        raise TokenInvalid(f"malformed token: invalid {name} encoding")
    try:
        return binascii.a2b_base64(stripped.translate(_TO_BASE64) + b"=" * (-tail % 4), strict_mode=True)
    except binascii.Error as exc:
        raise TokenInvalid(f"malformed token: invalid {name} encoding") from exc


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise TokenInvalid(f"malformed token: {name} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenInvalid(f"malformed token: {name} is not a JSON object")
    return value


def _crit_understood(header: dict[str, Any]) -> bool:
    """PyJWT's rule: ``crit`` is a non-empty list of extensions it implements, each in the header."""
    crit = header["crit"]
    return (
        isinstance(crit, list)
        and bool(crit)
        and all(isinstance(c, str) and c in _UNDERSTOOD_CRIT and c in header for c in crit)
    )


def _signature_ok(algorithm: str, public_key: PublicKey, signature: bytes, signing_input: bytes) -> bool:
    """The signature check of the key's own algorithm (``algorithm`` is the trusted key's)."""
    try:
        if algorithm == "EdDSA":
            cast(ed25519.Ed25519PublicKey, public_key).verify(signature, signing_input)
        elif algorithm == "ES256" and len(signature) == 64:  # JWS: raw r || s, 32 bytes each
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            cast(ec.EllipticCurvePublicKey, public_key).verify(der, signing_input, _ECDSA_SHA256)
        elif algorithm == "RS256":
            cast(rsa.RSAPublicKey, public_key).verify(signature, signing_input, _PKCS1V15, _SHA256)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _as_int(claims: dict[str, Any], name: str) -> int:
    """A time claim as PyJWT reads it (``int(value)``), or TokenInvalid."""
    try:
        return int(claims[name])
    except (ValueError, TypeError, OverflowError):
        raise TokenInvalid(f"{name} claim must be an integer") from None


def _check_claims(claims: dict[str, Any], key: TrustedKey, audience: str, required: list[str], leeway: float) -> None:
    """PyJWT's claim checks, in its order (which decides the error when several apply)."""
    for name in required:
        if claims.get(name) is None:
            raise TokenInvalid(f'Token is missing the "{name}" claim')
    now = time.time()
    if "iat" in claims and _as_int(claims, "iat") > now + leeway:
        raise TokenInvalid("The token is not yet valid (iat)")
    if "nbf" in claims and _as_int(claims, "nbf") > now + leeway:
        raise TokenInvalid("The token is not yet valid (nbf)")
    if "exp" in claims and _as_int(claims, "exp") <= now - leeway:
        raise TokenExpired("token expired")
    if "iss" not in claims:
        raise TokenInvalid('Token is missing the "iss" claim')
    if not isinstance(claims["iss"], str) or claims["iss"] != key.issuer:
        raise UntrustedIssuer(f"issuer does not match key {key.kid!r}")
    aud = claims.get("aud")
    if not aud:
        raise TokenInvalid('Token is missing the "aud" claim')
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenInvalid("Invalid audience claim format in token")
    if audience not in audiences:
        raise TokenInvalid("Audience doesn't match")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise TokenInvalid("Subject must be a string")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise TokenInvalid("JWT ID must be a string")


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and not-before; returns typed claims.

    The algorithm comes from the trusted key, never from the token header, so ``alg: none``
    and HS256-signed-with-the-public-key tokens are refused before any signature check.

    ``cache_size`` > 0 keeps that many recently verified tokens (least recently used evicted):
    ``verify`` of a token string that passed every check before returns its claims without
    redoing the signature, as long as it has not expired since. Only exact, fully verified
    strings are kept (a forged token is another string and gets the full check), ``nbf``/``iat``
    only become more true with time, and ``use`` (a key change) empties the cache.
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        audience: str,
        leeway_seconds: float = 5.0,
        cache_size: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._audience = audience
        self._leeway = leeway_seconds
        self._cache_size = cache_size
        self._clock = clock
        # (token, model) -> (claims, exp)
        self._verified: OrderedDict[tuple[str, type[BaseModel]], tuple[BaseModel, float]] = OrderedDict()

    @property
    def keys(self) -> KeySet:
        return self._keys

    def use(self, keys: KeySet) -> None:
        """Swap in a refreshed key set (rotation): tokens are checked against it from now on."""
        self._keys = keys
        self._verified.clear()

    def key_for(self, token: str) -> TrustedKey:
        """The trusted key a token names, or TokenInvalid."""
        return self._key_for(_segments(token)[1][0])

    def decode(self, token: str, *, required: list[str] | None = None) -> tuple[dict[str, Any], TrustedKey]:
        """Verified raw claims and the key that signed them."""
        raw, (header, payload, signature) = _segments(token)
        key = self._key_for(header)
        signing_input = raw[: len(header) + 1 + len(payload)]
        if not _signature_ok(key.algorithm, key.public_key, _b64url(signature, "signature"), signing_input):
            raise TokenInvalid("Signature verification failed")
        claims = _json_object(_b64url(payload, "payload"), "payload")
        _check_claims(claims, key, self._audience, required or _REQUIRED, self._leeway)
        return claims, key

    def verify(self, token: str, model: type[M]) -> M:
        """Verified claims as ``model`` (e.g. UserClaims, SubscriptionClaims)."""
        if self._cache_size > 0:
            hit = self._verified.pop((token, model), None)
            # PyJWT's own test: expired once exp <= now - leeway. Expired: the full path refuses it.
            if hit is not None and hit[1] > self._clock() - self._leeway:
                self._verified[(token, model)] = hit  # most recently used
                return hit[0]  # type: ignore[return-value]  # stored under this very model
        claims, _ = self.decode(token)
        try:
            verified = model.model_validate(claims)
        except ValidationError as exc:
            raise TokenInvalid(f"claims do not fit {model.__name__}: {exc.error_count()} errors") from exc
        if self._cache_size > 0 and model.model_config.get("frozen"):  # shared between callers: immutable only
            self._verified[(token, model)] = (verified, float(claims["exp"]))
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return verified

    def _key_for(self, header_segment: bytes) -> TrustedKey:
        """The key the header names, if the header asks for nothing this verifier does not do."""
        header = _json_object(_b64url(header_segment, "header"), "header")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenInvalid("token has no kid")
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid(f"unknown kid {kid!r}")
        if header.get("alg") != key.algorithm:
            raise TokenInvalid(f"algorithm {header.get('alg')!r} not allowed for kid {kid!r}")
        if "crit" in header and not _crit_understood(header):
            raise TokenInvalid("unsupported critical header extension")
        if header.get("b64", True) is False:  # an unencoded (detached) payload: never ours
            raise TokenInvalid("unencoded payloads (b64: false) are not accepted")
        return key


def _segments(token: str) -> tuple[bytes, list[bytes]]:
    """The token as bytes, and its header, payload and signature segments (still base64url)."""
    if not token.isascii():
        raise TokenInvalid("malformed token: not a JWS compact serialization")
    raw = token.encode()
    segments = raw.split(b".")
    if len(segments) != 3 or not segments[0]:
        raise TokenInvalid("malformed token: not a JWS compact serialization")
    return raw, segments
