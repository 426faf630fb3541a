"""Settings refuse development defaults outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from flashline_service.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")
    service_name: str = "demo"


def test_development_gets_working_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASHLINE_ENV", raising=False)
    settings = DemoSettings()
    assert settings.environment == "development"
    assert str(settings.signing_key_file).endswith("demo.pem") and settings.signing_key_id == "dev-demo-1"
    assert settings.issuer == "flashline-demo"
    assert settings.cors_origins


def test_production_refuses_to_start_without_explicit_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHLINE_ENV", "production")
    with pytest.raises(ValidationError, match="production requires explicit settings: database_url, amqp_url"):
        DemoSettings()


def test_production_refuses_the_development_broker_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHLINE_ENV", "production")
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql+asyncpg://demo:secret@db/demo")
    monkeypatch.setenv("DEMO_AMQP_URL", "amqp://guest:guest@rabbit/prod")
    monkeypatch.setenv("DEMO_SIGNING_KEY_FILE", "/run/keys/demo.pem")
    monkeypatch.setenv("DEMO_SIGNING_KEY_ID", "prod-demo-1")
    monkeypatch.setenv("FLASHLINE_TRUSTED_KEYS_FILE", "/run/keys/trusted.json")
    with pytest.raises(ValidationError, match="development FLASHLINE_INTERNAL_API_KEY"):
        DemoSettings()
    monkeypatch.setenv("FLASHLINE_INTERNAL_API_KEY", "from-a-secret")
    with pytest.raises(ValidationError, match="development broker credentials"):
        DemoSettings()
    monkeypatch.setenv("DEMO_AMQP_URL", "amqp://demo:secret@rabbit/prod")
    settings = DemoSettings()
    assert settings.cors_origins == []


def test_one_cors_list_for_every_service_unless_a_service_sets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHLINE_CORS_ORIGINS", '["https://shop.example.com"]')
    assert DemoSettings().cors_origins == ["https://shop.example.com"]
    monkeypatch.setenv("DEMO_CORS_ORIGINS", '["https://admin.example.com"]')
    assert DemoSettings().cors_origins == ["https://admin.example.com"]
