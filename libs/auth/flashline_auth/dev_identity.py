"""A development identity provider: prints a user token signed with the dev identity key.

    python -m flashline_auth.dev_identity --user alice --role customer [--tenant acme]

Never used in production: production user tokens come from the real identity provider.
"""

from __future__ import annotations

import argparse
import os

from flashline_auth.dev import ensure_dev_keys, load_dev_signing_key
from flashline_auth.minting import TokenMinter

DEFAULT_AUDIENCE = "flashline"


def user_token(
    keys_dir: str,
    *,
    user: str,
    role: str = "customer",
    tenant: str | None = None,
    ttl_seconds: int = 3600,
    audience: str = DEFAULT_AUDIENCE,
    channels: list[str] | None = None,
) -> str:
    minter = TokenMinter(load_dev_signing_key(keys_dir, "identity"), audience=audience, ttl_seconds=ttl_seconds)
    claims: dict[str, object] = {"sub": user, "role": role, "name": user.title()}
    if tenant:
        claims["tenant"] = tenant
    if channels:
        claims["channels"] = channels
    token, _ = minter.mint(claims)
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", required=True)
    parser.add_argument("--role", choices=["customer", "staff"], default="customer")
    parser.add_argument("--tenant")
    parser.add_argument("--ttl", type=int, default=3600)
    parser.add_argument("--keys-dir", default=os.environ.get("FLASHLINE_DEV_KEYS_DIR", ".dev/keys"))
    args = parser.parse_args()
    ensure_dev_keys(args.keys_dir)
    print(user_token(args.keys_dir, user=args.user, role=args.role, tenant=args.tenant, ttl_seconds=args.ttl))


if __name__ == "__main__":
    main()
