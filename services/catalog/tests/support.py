"""Helpers for the database and broker tests: settings, polling, a tap on the bus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.settings import CatalogSettings
from flashline_service.testing import Tap, eventually  # noqa: F401 - shared test helpers


def settings_for(dev_keys: Path, database_url: str, amqp_url: str, **overrides: Any) -> CatalogSettings:
    return CatalogSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        trusted_keys_file=dev_keys / "trusted.json",
        signing_key_file=dev_keys / "catalog.pem",
        signing_key_id="dev-catalog-1",
        **overrides,
    )
