"""Every setting of the gateway, from the environment (prefix ``GATEWAY_``), with dev defaults.

Production refuses the development admin key and a missing key set: secrets never default there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flashline_contracts.topology import DEV_INTERNAL_API_KEY

DEV_ADMIN_API_KEY = "dev-only-admin-key-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "staging", "production"] = Field(
        default="development", validation_alias=AliasChoices("FLASHLINE_ENV", "GATEWAY_ENV")
    )
    trusted_keys_file: str = Field(
        default=".dev/keys/trusted.json",
        validation_alias=AliasChoices("FLASHLINE_TRUSTED_KEYS_FILE", "GATEWAY_TRUSTED_KEYS_FILE"),
    )
    # Or fetch the key set from an HTTP(S) endpoint and refresh it, so keys can rotate without restarts.
    trusted_keys_url: str = Field(
        default="", validation_alias=AliasChoices("FLASHLINE_TRUSTED_KEYS_URL", "GATEWAY_TRUSTED_KEYS_URL")
    )
    trusted_keys_refresh_seconds: float = Field(default=300.0, gt=0)
    audience: str = "flashline"
    # Presented to the services' GET /internal/channels/{channel} (shared with them).
    internal_api_key: str = Field(
        default=DEV_INTERNAL_API_KEY,
        validation_alias=AliasChoices("FLASHLINE_INTERNAL_API_KEY", "GATEWAY_INTERNAL_API_KEY", "internal_api_key"),
    )

    host: str = "0.0.0.0"
    port: int = 8000
    listen_backlog: int = 4096  # effective up to the kernel's net.core.somaxconn
    handshake_timeout_seconds: float = Field(default=10.0, gt=0)  # TCP accept to HTTP request (slowloris)
    close_timeout_seconds: float = Field(default=2.0, gt=0)  # closing handshake, then the socket is aborted
    admin_host: str = "127.0.0.1"
    admin_port: int = 9000
    admin_api_key: str = DEV_ADMIN_API_KEY
    node_id: str = Field(  # defaults to hostname + random suffix
        default="", validation_alias=AliasChoices("GATEWAY_NODE_ID", "GATEWAY_NODE_NAME")
    )

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/flashline-dev"
    stream_prefetch: int = 1000
    warm_window_seconds: float | None = None  # default: the longest history TTL among namespaces
    warm_timeout_seconds: float = 60.0

    namespaces_file: str | None = None
    position_urls: str = ""
    position_timeout_seconds: float = 2.0

    allow_anonymous: bool = True
    max_connections: int = 20_000
    max_connects_per_second: float = 500.0
    # Per client address (IPv6: per /64); 0 = off. Loopback peers are exempt by default (sidecars, dev, bench).
    max_connections_per_address: int = Field(default=200, ge=0)
    max_connects_per_address_per_second: float = Field(default=0.0, ge=0)
    address_limit_exempt: str = "127.0.0.0/8,::1"
    # Peers (IPs or CIDRs) whose forwarded header names the client; empty = the peer is the client.
    trusted_proxies: str = ""
    forwarded_header: str = "X-Forwarded-For"
    max_frame_bytes: int = 64 * 1024
    max_channels_per_connection: int = 128
    commands_per_second: float = 50.0
    command_burst: int = 100
    client_queue_bytes: int = 1024 * 1024
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    token_grace_seconds: float = 5.0
    connect_timeout_seconds: float = 10.0
    max_known_channels: int = 200_000
    presence_interval: float = 2.0
    drain_seconds: float = 20.0
    log_level: str = "INFO"
    log_connections: bool = True  # a line per connect and client-chosen disconnect (false: DEBUG)
    use_uvloop: bool = True

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        if self.env == "production":
            if self.internal_api_key == DEV_INTERNAL_API_KEY:
                raise ValueError("FLASHLINE_INTERNAL_API_KEY must be set in production")
            if not self.admin_api_key or self.admin_api_key == DEV_ADMIN_API_KEY:
                raise ValueError("GATEWAY_ADMIN_API_KEY must be set in production")
            dev_file = not self.trusted_keys_file or self.trusted_keys_file.startswith(".dev/")
            if dev_file and not self.trusted_keys_url:
                raise ValueError("FLASHLINE_TRUSTED_KEYS_FILE or _URL must point at the production key set")
        return self
