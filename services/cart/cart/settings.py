"""Cart configuration: one object built at startup from ``CART_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from flashline_service.settings import ServiceSettings


class CartSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CART_", extra="ignore")

    service_name: str = "cart"
    port: int = 8003
    database_url: str = "postgresql+asyncpg://cart:cart-dev-password@127.0.0.1:5432/flashline_cart"
    # A line above this many units is refused (422): nobody buys 10^9 sneakers, and it caps totals.
    max_quantity_per_line: int = Field(99, ge=1, le=1_000_000)
    # Carts total in one currency; products priced in another cannot be added (409).
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    # A guest cart nothing has changed for this long is deleted (only its browser's token reaches it,
    # so nobody else ever would); the sweeper looks every interval and deletes a batch per transaction.
    guest_cart_ttl_days: float = Field(30.0, gt=0)
    guest_sweep_interval_seconds: float = Field(300.0, gt=0)
    guest_sweep_batch_size: int = Field(500, ge=1, le=10_000)
