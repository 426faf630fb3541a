"""Storefront settings: every one an environment variable with a working development default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT_DIR = PACKAGE_DIR.parent  # demo/storefront: web/ (sources), dist/ (the built bundle), build.mjs

DEV_ENVIRONMENTS = ("development", "test")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class DevUser:
    """A user of the development sign-in switcher (tokens from the dev identity provider)."""

    user: str
    role: str = "customer"
    tenant: str | None = None
    label: str = ""

    def as_json(self) -> dict[str, object]:
        return {"user": self.user, "role": self.role, "tenant": self.tenant, "label": self.label or self.user.title()}


DEV_USERS: tuple[DevUser, ...] = (
    DevUser("alice", "customer", None, "Alice (customer)"),
    DevUser("bob", "customer", None, "Bob (customer)"),
    DevUser("carol", "staff", None, "Carol (staff)"),
    DevUser("dana", "customer", "acme", "Dana (Acme Corp)"),
)


@dataclass(frozen=True)
class StorefrontSettings:
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    catalog_url: str = "http://127.0.0.1:8001"
    orders_url: str = "http://127.0.0.1:8002"
    cart_url: str = "http://127.0.0.1:8003"
    gateway_urls: list[str] = field(default_factory=lambda: ["ws://127.0.0.1:8000/connection/websocket"])
    dev_keys_dir: Path = Path(".dev/keys")
    token_ttl_seconds: int = 3600
    static_dir: Path = ROOT_DIR / "dist"
    build_on_start: bool = True
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StorefrontSettings:
        env = dict(os.environ if env is None else env)
        default = cls()
        gateways = _split(env.get("STOREFRONT_GATEWAY_URLS", env.get("STOREFRONT_GATEWAY_URL", "")))
        return cls(
            environment=env.get("FLASHLINE_ENV", default.environment),
            host=env.get("STOREFRONT_HOST", default.host),
            port=int(env.get("STOREFRONT_PORT", default.port)),
            catalog_url=env.get("STOREFRONT_CATALOG_URL", default.catalog_url).rstrip("/"),
            orders_url=env.get("STOREFRONT_ORDERS_URL", default.orders_url).rstrip("/"),
            cart_url=env.get("STOREFRONT_CART_URL", default.cart_url).rstrip("/"),
            gateway_urls=gateways or default.gateway_urls,
            dev_keys_dir=Path(env.get("FLASHLINE_DEV_KEYS_DIR", str(default.dev_keys_dir))),
            token_ttl_seconds=int(env.get("STOREFRONT_TOKEN_TTL_SECONDS", default.token_ttl_seconds)),
            static_dir=Path(env.get("STOREFRONT_STATIC_DIR", str(default.static_dir))),
            build_on_start=env.get("STOREFRONT_BUILD_ON_START", "1") not in ("0", "false", "no"),
            log_level=env.get("STOREFRONT_LOG_LEVEL", default.log_level),
        )

    @property
    def dev_tokens_enabled(self) -> bool:
        """Only development and test mint identity tokens: elsewhere a real identity provider does."""
        return self.environment in DEV_ENVIRONMENTS

    def public_config(self) -> dict[str, object]:
        """What the browser needs: where the services and the gateway are, and who can sign in."""
        return {
            "environment": self.environment,
            "catalog_url": self.catalog_url,
            "orders_url": self.orders_url,
            "cart_url": self.cart_url,
            "gateway_urls": self.gateway_urls,
            "dev_sign_in": self.dev_tokens_enabled,
            "dev_users": [u.as_json() for u in DEV_USERS] if self.dev_tokens_enabled else [],
        }
