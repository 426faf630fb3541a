"""The storefront server: config for the page, dev tokens only in development and test, the bundle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("storefront") is None:  # not installed into the virtualenv: use the sources
    sys.path.insert(0, str(ROOT / "demo" / "storefront"))

from storefront.app import build_app  # noqa: E402
from storefront.settings import StorefrontSettings  # noqa: E402

from flashline_auth.dev import ensure_dev_keys  # noqa: E402


def _client(tmp_path: Path, **env: str) -> httpx.AsyncClient:
    static = tmp_path / "dist"
    static.mkdir(exist_ok=True)
    (static / "index.html").write_text("<!doctype html><title>x</title>")
    settings = StorefrontSettings.from_env({"STOREFRONT_STATIC_DIR": str(static), **env})
    transport = httpx.ASGITransport(app=build_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://storefront")


async def test_config_tells_the_page_where_everything_is(tmp_path: Path) -> None:
    env = {"STOREFRONT_CATALOG_URL": "http://catalog:1/", "STOREFRONT_GATEWAY_URLS": "ws://a/ws, ws://b/ws"}
    async with _client(tmp_path, **env) as client:
        config = (await client.get("/config.json")).json()
    assert config["catalog_url"] == "http://catalog:1"
    assert config["gateway_urls"] == ["ws://a/ws", "ws://b/ws"]
    assert config["dev_sign_in"] is True
    assert {u["user"] for u in config["dev_users"]} >= {"alice", "bob", "carol"}
    assert next(u for u in config["dev_users"] if u["user"] == "carol")["role"] == "staff"
    assert any(u["tenant"] for u in config["dev_users"])


async def test_dev_token_is_a_dev_identity_token(tmp_path: Path) -> None:
    import jwt

    keys = ensure_dev_keys(tmp_path / "keys")
    async with _client(tmp_path, FLASHLINE_DEV_KEYS_DIR=str(keys), FLASHLINE_ENV="test") as client:
        answer = await client.post("/dev/token", json={"user": "dana", "role": "customer", "tenant": "acme"})
        bad_role = await client.post("/dev/token", json={"user": "dana", "role": "admin"})
        bad_user = await client.post("/dev/token", json={"user": "../etc", "role": "customer"})
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["token"], options={"verify_signature": False})
    assert (claims["sub"], claims["role"], claims["tenant"]) == ("dana", "customer", "acme")
    assert claims["iss"] == "flashline-identity"
    assert bad_role.status_code == 422
    assert bad_user.status_code == 422


@pytest.mark.parametrize("environment", ["staging", "production"])
async def test_no_dev_tokens_outside_development(tmp_path: Path, environment: str) -> None:
    keys = ensure_dev_keys(tmp_path / "keys")
    async with _client(tmp_path, FLASHLINE_DEV_KEYS_DIR=str(keys), FLASHLINE_ENV=environment) as client:
        answer = await client.post("/dev/token", json={"user": "alice", "role": "staff"})
        config = (await client.get("/config.json")).json()
    assert answer.status_code in (404, 405)
    assert config["dev_sign_in"] is False
    assert config["dev_users"] == []


async def test_serves_the_bundle_without_caching(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"


def test_the_bundle_builds(tmp_path: Path) -> None:
    import shutil

    from storefront.bundle import ensure_bundle, is_stale

    if shutil.which("node") is None or not (ROOT / "node_modules" / "esbuild").is_dir():
        pytest.skip("node or node_modules/esbuild missing")
    dist = tmp_path / "dist"
    assert is_stale(dist)
    assert ensure_bundle(dist) is True
    assert {"index.html", "app.js", "styles.css"} <= {p.name for p in dist.iterdir()}
    assert "centrifuge" in (dist / "app.js").read_text().lower() or (dist / "app.js").stat().st_size > 50_000
    assert ensure_bundle(dist) is False  # up to date now


def test_seeding_is_idempotent(tmp_path: Path) -> None:
    """First run creates every demo product (the drop opens a minute later); the second changes nothing."""
    import json
    import threading
    from datetime import UTC, datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from storefront.seed import DEMO_PRODUCTS, seed_catalog

    created: dict[str, dict[str, object]] = {}

    class FakeCatalog(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.headers["Authorization"].startswith("Bearer ")
            status = 409 if body["sku"] in created else 201
            if status == 201:
                created[body["sku"]] = {**body, "id": len(created) + 1}
            data = json.dumps(created[body["sku"]] if status == 201 else {"detail": "duplicate sku"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCatalog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    keys = ensure_dev_keys(tmp_path / "keys")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = seed_catalog(url, keys, log=lambda _: None)
        second = seed_catalog(url, keys, log=lambda _: None)
    finally:
        server.shutdown()
    assert set(first) == {p.sku for p in DEMO_PRODUCTS} and all(first.values())
    assert second == dict.fromkeys(first)  # nothing created the second time
    drops = [body for body in created.values() if body.get("sale_starts_at")]
    assert len(drops) == 1
    opens = datetime.fromisoformat(str(drops[0]["sale_starts_at"]))
    assert timedelta(seconds=50) < opens - datetime.now(UTC) <= timedelta(seconds=60)


def test_devstack_runs_the_storefront_against_the_stack() -> None:
    import json

    from flashline_devstack.stack import StackConfig

    config = StackConfig(ports={"catalog": 1, "orders": 2, "cart": 3}, gateway_ports=[4, 5], storefront_port=6)
    env = config.storefront_env()
    assert env["STOREFRONT_PORT"] == "6"
    assert env["STOREFRONT_CATALOG_URL"].endswith(":1")
    assert env["STOREFRONT_GATEWAY_URLS"].count("ws://") == 2
    # the services admit the storefront's origin when it is not on the default port 8080
    assert "http://127.0.0.1:6" in json.loads(config.service_env("cart")["CART_CORS_ORIGINS"])
    assert "CART_CORS_ORIGINS" not in StackConfig(storefront_port=8080).service_env("cart")
