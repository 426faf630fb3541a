"""Key material: a trusted key set (public keys by kid) and a service's own signing key.

The key set file is JSON: ``{"keys": [{"kid", "iss", "alg", "public_key_pem", "namespaces"?}]}``.
``namespaces`` lists what a grant issuer may grant (the gateway enforces it); an empty list
means the key signs user (connection) tokens only.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# Asymmetric algorithms only: HS* would let anyone holding a public key forge tokens. RS256 is
# what identity providers sign with by default; it is also the cheapest to verify (~26 us here,
# ES256 ~70, EdDSA ~120), which matters for connection tokens at a connect storm's rate.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256", "RS256"})
MIN_RSA_BITS = 2048

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _algorithm_for(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"unsupported EC curve {key.curve.name}")
        return "ES256"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits, not {key.key_size}")
        return "RS256"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _new_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    raise ValueError(f"algorithm {algorithm!r} is not allowed")


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key we accept signatures from, with the issuer it belongs to."""

    kid: str
    issuer: str
    algorithm: str
    public_key: PublicKey
    namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not allowed")
        if _algorithm_for(self.public_key) != self.algorithm:
            raise ValueError(f"key {self.kid!r} does not match algorithm {self.algorithm}")

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> TrustedKey:
        key = serialization.load_pem_public_key(entry["public_key_pem"].encode())
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"key {entry.get('kid')!r}: unsupported public key type")
        return cls(
            kid=entry["kid"],
            issuer=entry["iss"],
            algorithm=entry.get("alg") or _algorithm_for(key),
            public_key=key,
            namespaces=tuple(entry.get("namespaces", ())),
        )

    def to_json(self) -> dict[str, Any]:
        pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        return {
            "kid": self.kid,
            "iss": self.issuer,
            "alg": self.algorithm,
            "public_key_pem": pem,
            "namespaces": list(self.namespaces),
        }


@dataclass(frozen=True, slots=True)
class KeySet:
    """Trusted public keys by kid."""

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Iterable[TrustedKey]) -> KeySet:
        by_kid: dict[str, TrustedKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise ValueError(f"duplicate kid {key.kid!r}")
            by_kid[key.kid] = key
        return cls(by_kid)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> KeySet:
        return cls.of(TrustedKey.from_json(entry) for entry in document.get("keys", ()))

    @classmethod
    def load(cls, path: str | Path) -> KeySet:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def fetch(cls, url: str, *, timeout: float = 5.0) -> KeySet:
        """The key set published at ``url`` (blocking: call it from a worker thread in async code)."""
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"key set URL must be http(s): {url!r}")
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return cls.from_json(json.loads(response.read()))

    def to_json(self) -> dict[str, Any]:
        return {"keys": [key.to_json() for key in self.keys.values()]}

    def get(self, kid: str) -> TrustedKey | None:
        return self.keys.get(kid)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key a service signs its grants with, and the kid/issuer it announces."""

    kid: str
    issuer: str
    private_key: PrivateKey

    @property
    def algorithm(self) -> str:
        return _algorithm_for(self.private_key)

    @classmethod
    def generate(cls, *, kid: str, issuer: str, algorithm: str = "EdDSA") -> SigningKey:
        return cls(kid=kid, issuer=issuer, private_key=_new_private_key(algorithm))

    @classmethod
    def from_pem(cls, pem: bytes, *, kid: str, issuer: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("signing key must be Ed25519, EC P-256 or RSA")
        _algorithm_for(key)  # refuses other curves and short RSA keys
        return cls(kid=kid, issuer=issuer, private_key=key)

    @classmethod
    def load(cls, path: str | Path, *, kid: str, issuer: str) -> SigningKey:
        return cls.from_pem(Path(path).read_bytes(), kid=kid, issuer=issuer)

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def trusted(self, namespaces: Iterable[str] = ()) -> TrustedKey:
        """The public half, as others must trust it."""
        return TrustedKey(
            kid=self.kid,
            issuer=self.issuer,
            algorithm=self.algorithm,
            public_key=self.private_key.public_key(),
            namespaces=tuple(namespaces),
        )
