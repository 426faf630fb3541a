"""The app factory every service uses: health, readiness, auth dependencies, 503 on outages."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic_settings import SettingsConfigDict
from sqlalchemy.ext.asyncio import create_async_engine

from flashline_contracts.topology import DEV_INTERNAL_API_KEY
from flashline_messaging import outbox
from flashline_messaging.schema import metadata
from flashline_service.app import create_service_app
from flashline_service.auth import CurrentUser, StaffUser
from flashline_service.settings import ServiceSettings
from flashline_service.testing import ThrowawayDatabases, app_client, user_token

router = APIRouter()


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"sub": user.sub}


@router.get("/staff")
async def staff(user: StaffUser) -> dict[str, str]:
    return {"sub": user.sub}


@router.post("/publish/{channel}")
async def publish(channel: str, request: Request) -> dict[str, int]:
    async with request.app.state.db.sessions() as session, session.begin():
        position = await outbox.publish_to_channel(session, channel, {"hello": "world"})
    return {"offset": position.offset}


@router.get("/count")
async def count(request: Request) -> dict[str, int]:
    async with request.app.state.db.sessions() as session:
        return {"n": int((await session.execute(sa.text("SELECT 1"))).scalar_one())}


class KitSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KIT_", extra="ignore")
    service_name: str = "orders"


def settings_for(dev_keys: Path, database_url: str, amqp_url: str) -> KitSettings:
    return KitSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        trusted_keys_file=dev_keys / "trusted.json",
        signing_key_file=dev_keys / "orders.pem",
        signing_key_id="dev-orders-1",
    )


async def test_health_auth_and_channel_lookup(
    dev_keys: Path, throwaway_databases: ThrowawayDatabases, amqp_url: str
) -> None:
    url = throwaway_databases.create("kit")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    app = create_service_app(settings_for(dev_keys, url, amqp_url), title="kit", routers=[router])
    async with app_client(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] is True
        assert (await client.get("/me")).status_code == 401
        assert (await client.get("/me", headers={"Authorization": "Bearer nonsense"})).status_code == 401
        alice = {"Authorization": f"Bearer {user_token(dev_keys, 'alice')}"}
        assert (await client.get("/me", headers=alice)).json() == {"sub": "alice"}
        assert (await client.get("/staff", headers=alice)).status_code == 403
        boss = {"Authorization": f"Bearer {user_token(dev_keys, 'boss', 'staff')}"}
        assert (await client.get("/staff", headers=boss)).status_code == 200
        gateway = {"Authorization": f"Bearer {DEV_INTERNAL_API_KEY}"}
        assert (await client.get("/internal/channels/order:1", headers=gateway)).status_code == 404
        assert (await client.post("/publish/order:1")).json() == {"offset": 1}
        assert (await client.get("/internal/channels/order:1")).status_code == 401  # not the gateway
        assert (await client.get("/internal/channels/order:1", headers=alice)).status_code == 401
        found = (await client.get("/internal/channels/order:1", headers=gateway)).json()
        assert found["offset"] == 1 and found["data"] == {"hello": "world"} and found["epoch"]
        assert "text/plain" in (await client.get("/metrics")).headers["content-type"]


async def test_database_outage_is_a_fast_503(dev_keys: Path, amqp_url: str) -> None:
    dead = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    app = create_service_app(settings_for(dev_keys, dead, amqp_url), title="kit", routers=[router])
    async with app_client(app) as client:
        response = await client.get("/count")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
