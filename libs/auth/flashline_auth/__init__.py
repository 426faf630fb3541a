"""Tokens for Flashline: verify with pinned algorithms and keys chosen by ``kid``; mint grants."""

from flashline_auth.errors import (
    AuthError,
    TokenExpired,
    TokenInvalid,
    UntrustedIssuer,
)
from flashline_auth.keys import KeySet, SigningKey, TrustedKey
from flashline_auth.minting import TokenMinter
from flashline_auth.verification import TokenVerifier

__all__ = [
    "AuthError",
    "KeySet",
    "SigningKey",
    "TokenExpired",
    "TokenInvalid",
    "TokenMinter",
    "TokenVerifier",
    "TrustedKey",
    "UntrustedIssuer",
]
