"""Mint tokens signed with a service's own key (subscription grants, dev user tokens)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from flashline_auth.keys import SigningKey


class TokenMinter:
    """Signs claim sets with one key; adds iss, aud, iat, exp, jti."""

    def __init__(self, key: SigningKey, *, audience: str, ttl_seconds: int) -> None:
        self._key = key
        self._audience = audience
        self._ttl = ttl_seconds

    @property
    def issuer(self) -> str:
        return self._key.issuer

    def mint(
        self, claims: dict[str, Any], *, ttl_seconds: int | None = None, now: float | None = None
    ) -> tuple[str, datetime]:
        """A signed token and its expiry time."""
        issued = int(now if now is not None else time.time())
        exp = issued + (ttl_seconds if ttl_seconds is not None else self._ttl)
        payload = {
            "iss": self._key.issuer,
            "aud": self._audience,
            "iat": issued,
            "exp": exp,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        token = jwt.encode(
            payload, self._key.private_key, algorithm=self._key.algorithm, headers={"kid": self._key.kid}
        )
        return token, datetime.fromtimestamp(exp, UTC)

    def subscription_token(self, *, user_id: str, channel: str, ttl_seconds: int | None = None) -> tuple[str, datetime]:
        """A grant for exactly one channel to exactly one user ("" for anonymous guests)."""
        return self.mint({"sub": user_id, "channel": channel}, ttl_seconds=ttl_seconds)
