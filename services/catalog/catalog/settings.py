"""Catalog configuration: one object built at startup from ``CATALOG_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from flashline_service.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    service_name: str = "catalog"
    port: int = 8001
    database_url: str = "postgresql+asyncpg://catalog:catalog-dev-password@127.0.0.1:5432/flashline_catalog"
    # "Only 3 left": at or under this many units (and above zero) a product's status is "low".
    low_stock_threshold: int = Field(5, ge=0)
    # The drop scheduler never sleeps longer than this, so a new or moved sale start is seen quickly.
    drop_max_sleep_seconds: float = Field(1.0, gt=0, le=60)
    drop_batch_size: int = Field(100, ge=1, le=10_000)
