"""Development key ring: generated on first ``make run`` into an ignored folder, never committed.

Layout of the folder: ``<name>.pem`` (PKCS#8 private key) per issuer and ``trusted.json`` (the
public key set every service and the gateway trust, with the namespaces each issuer may grant).
The identity key is RSA (RS256), as identity providers sign by default; the services' grant keys
are Ed25519. A key already in the folder keeps its type.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from flashline_auth.keys import KeySet, SigningKey

# issuer short name -> namespaces its grants may cover (identity signs user tokens only)
DEV_ISSUERS: dict[str, tuple[str, ...]] = {
    "identity": (),
    "catalog": ("stock",),
    "orders": ("order", "user", "tenant"),
    "cart": ("cart",),
}


# issuer short name -> its key's algorithm, where not EdDSA
DEV_ALGORITHMS: dict[str, str] = {"identity": "RS256"}


def issuer_name(short: str) -> str:
    return f"flashline-{short}"


def dev_kid(short: str) -> str:
    return f"dev-{short}-1"


def ensure_dev_keys(folder: str | Path, algorithms: Mapping[str, str] | None = None) -> Path:
    """Create missing dev keys in ``folder`` (idempotent) and (re)write ``trusted.json``.

    ``algorithms`` (issuer short name -> algorithm) overrides ``DEV_ALGORITHMS`` for new keys."""
    algorithms = {**DEV_ALGORITHMS, **(algorithms or {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trusted = []
    for short, namespaces in DEV_ISSUERS.items():
        pem_path = folder / f"{short}.pem"
        if pem_path.exists():
            key = SigningKey.load(pem_path, kid=dev_kid(short), issuer=issuer_name(short))
        else:
            algorithm = algorithms.get(short, "EdDSA")
            key = SigningKey.generate(kid=dev_kid(short), issuer=issuer_name(short), algorithm=algorithm)
            fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_pem())
        trusted.append(key.trusted(namespaces))
    (folder / "trusted.json").write_text(json.dumps(KeySet.of(trusted).to_json(), indent=2))
    return folder


def load_dev_signing_key(folder: str | Path, short: str) -> SigningKey:
    return SigningKey.load(Path(folder) / f"{short}.pem", kid=dev_kid(short), issuer=issuer_name(short))
