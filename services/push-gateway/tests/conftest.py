"""Fixtures shared by unit and integration tests: dev keys and token helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashline_auth.dev import ensure_dev_keys, load_dev_signing_key
from flashline_auth.dev_identity import user_token
from flashline_auth.minting import TokenMinter


class Tokens:
    """Mints user tokens and subscription grants with the dev issuers."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir

    def user(self, user: str, *, ttl: int = 3600, tenant: str | None = None, channels: list[str] | None = None) -> str:
        return user_token(str(self.keys_dir), user=user, tenant=tenant, ttl_seconds=ttl, channels=channels)

    def grant(self, issuer: str, *, user: str, channel: str, ttl: int = 3600) -> str:
        minter = TokenMinter(load_dev_signing_key(self.keys_dir, issuer), audience="flashline", ttl_seconds=ttl)
        token, _ = minter.subscription_token(user_id=user, channel=channel)
        return token

    def raw(self, issuer: str, claims: dict, *, ttl: int = 3600, now: float | None = None) -> str:
        minter = TokenMinter(load_dev_signing_key(self.keys_dir, issuer), audience="flashline", ttl_seconds=ttl)
        token, _ = minter.mint(claims, now=now)
        return token


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def tokens(keys_dir: Path) -> Tokens:
    return Tokens(keys_dir)
