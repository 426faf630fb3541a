"""Verify JWTs against a key set: algorithm pinned per key, key chosen by ``kid``."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import jwt
from pydantic import BaseModel, ValidationError

from flashline_auth.errors import TokenExpired, TokenInvalid, UntrustedIssuer
from flashline_auth.keys import KeySet, TrustedKey

M = TypeVar("M", bound=BaseModel)

_REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


def _unverified_header(token: str) -> dict[str, Any]:
    """The header segment only, to pick the key: ``jwt.get_unverified_header`` would decode the
    whole token, which ``jwt.decode`` then does again (a third of a connect's CPU at the gateway)."""
    segment, dot, _ = token.partition(".")
    if not dot or not segment:
        raise TokenInvalid("malformed token: not a JWS compact serialization")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenInvalid("malformed token: header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise TokenInvalid("malformed token: header is not a JSON object")
    return header


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
        header = _unverified_header(token)
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenInvalid("token has no kid")
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid(f"unknown kid {kid!r}")
        if header.get("alg") != key.algorithm:
            raise TokenInvalid(f"algorithm {header.get('alg')!r} not allowed for kid {kid!r}")
        return key

    def decode(self, token: str, *, required: list[str] | None = None) -> tuple[dict[str, Any], TrustedKey]:
        """Verified raw claims and the key that signed them."""
        key = self.key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=key.issuer,
                leeway=self._leeway,
                options={"require": required or _REQUIRED},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("token expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise UntrustedIssuer(f"issuer does not match key {key.kid!r}") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(str(exc)) from exc
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
