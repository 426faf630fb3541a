"""Orders configuration: one object built at startup from ``ORDERS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from flashline_service.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    service_name: str = "orders"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://orders:orders-dev-password@127.0.0.1:5432/flashline_orders"
    # A confirmed order not paid within this window expires and its stock goes back on the shelf.
    payment_window_seconds: float = Field(900.0, gt=0)
    # How often the expiry sweeper looks for overdue orders, and how many it expires per transaction.
    sweep_interval_seconds: float = Field(1.0, gt=0, le=60)
    sweep_batch_size: int = Field(100, ge=1, le=10_000)
