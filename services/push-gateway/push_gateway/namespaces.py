"""The namespace table: per channel namespace, who may subscribe and how history behaves.

Configuration, not code: a new kind of channel is an entry in the file named by
``GATEWAY_NAMESPACES_FILE`` (JSON or YAML, ``{"namespaces": {"name": {options}}}``), merged over
the built-in defaults below. The gateway knows nothing of orders or carts beyond this table.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SubscribePolicy(StrEnum):
    PUBLIC = "public"  # anyone the namespace admits (see allow_anonymous)
    TOKEN = "token"  # a subscription token from an issuer allowed to grant the namespace
    USER_LIMITED = "user_limited"  # ``ns#<user>``: only that user
    TENANT_CLAIM = "tenant_claim"  # connection token ``tenant`` == channel id, or a subscription token


class Recovery(StrEnum):
    NONE = "none"
    STREAM = "stream"  # every missed publication, or nothing
    CACHE = "cache"  # the latest publication (full state)


class Presence(StrEnum):
    NONE = "none"
    STATS = "stats"
    FULL = "full"


class Namespace(BaseModel):
    """Options of one namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    allow_anonymous: bool = False
    subscribe: SubscribePolicy = SubscribePolicy.TOKEN
    history_size: int = Field(default=0, ge=0)
    history_ttl_seconds: float = Field(default=0, ge=0)
    recovery: Recovery = Recovery.NONE
    presence: Presence = Presence.NONE
    conflation_ms: int = Field(default=0, ge=0)
    position_url: str | None = None

    @property
    def keeps_history(self) -> bool:
        return self.history_size > 0 and self.history_ttl_seconds > 0

    @property
    def recoverable(self) -> bool:
        return self.recovery is not Recovery.NONE


DEFAULTS: dict[str, dict[str, Any]] = {
    "stock": {
        "allow_anonymous": True,
        "subscribe": "public",
        "history_size": 10,
        "history_ttl_seconds": 300,
        "recovery": "cache",
        "presence": "stats",
        "conflation_ms": 100,
    },
    "order": {"subscribe": "token", "history_size": 50, "history_ttl_seconds": 3600, "recovery": "stream"},
    "cart": {
        "allow_anonymous": True,
        "subscribe": "token",
        "history_size": 10,
        "history_ttl_seconds": 3600,
        "recovery": "cache",
    },
    "user": {"subscribe": "user_limited", "history_size": 50, "history_ttl_seconds": 3600, "recovery": "stream"},
    "tenant": {"subscribe": "tenant_claim", "history_size": 100, "history_ttl_seconds": 3600, "recovery": "stream"},
}


class Namespaces:
    """Lookup by name; unknown namespaces are refused by the caller (error 102)."""

    def __init__(self, namespaces: dict[str, Namespace]) -> None:
        self._by_name = dict(namespaces)

    @classmethod
    def build(
        cls, overrides: dict[str, dict[str, Any]] | None = None, position_urls: dict[str, str] | None = None
    ) -> Namespaces:
        merged: dict[str, dict[str, Any]] = {name: dict(opts) for name, opts in DEFAULTS.items()}
        for name, opts in (overrides or {}).items():
            merged.setdefault(name, {}).update(opts)
        for name, url in (position_urls or {}).items():
            if name in merged:
                merged[name]["position_url"] = url
        return cls({name: Namespace(name=name, **opts) for name, opts in merged.items()})

    @classmethod
    def load(cls, path: str | Path | None, position_urls: dict[str, str] | None = None) -> Namespaces:
        overrides: dict[str, dict[str, Any]] = {}
        if path:
            text = Path(path).read_text()
            if str(path).endswith((".yaml", ".yml")):
                import yaml

                document = yaml.safe_load(text) or {}
            else:
                document = json.loads(text)
            overrides = document.get("namespaces", document)
        return cls.build(overrides, position_urls)

    def get(self, name: str) -> Namespace | None:
        return self._by_name.get(name)

    def __iter__(self):
        return iter(self._by_name.values())

    @property
    def longest_history_ttl(self) -> float:
        return max((ns.history_ttl_seconds for ns in self._by_name.values() if ns.keeps_history), default=0.0)


def parse_position_urls(spec: str) -> dict[str, str]:
    """``stock=http://h:1,order=http://h:2`` -> ``{"stock": "http://h:1", ...}``."""
    urls: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, url = part.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValueError(f"bad position url entry {part!r} (want namespace=url)")
        urls[name.strip()] = url.strip().rstrip("/")
    return urls
