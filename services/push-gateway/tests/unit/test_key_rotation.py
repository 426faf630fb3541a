"""The gateway can take its key set from a URL and follows rotations without a restart."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from flashline_auth import KeySet, SigningKey
from push_gateway.bootstrap import Gateway
from push_gateway.broker_memory import MemoryBroker, MemoryBus
from push_gateway.settings import Settings


def serve(document: dict[str, object]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/keys.json"


async def test_keys_come_from_the_url_and_refresh_picks_up_a_rotation(keys_dir: Path) -> None:
    document: dict[str, object] = KeySet.load(keys_dir / "trusted.json").to_json()
    httpd, url = serve(document)
    try:
        gateway = Gateway(Settings(trusted_keys_url=url, env="test", admin_port=0), broker=MemoryBroker(MemoryBus()))
        assert gateway.verifier.keys.get("dev-identity-1") is not None
        rotated = SigningKey.generate(kid="identity-2", issuer="flashline-identity")
        document["keys"] = [*document["keys"], rotated.trusted().to_json()]  # type: ignore[misc]
        await gateway._refresh_keys()
        assert gateway.verifier.keys.get("identity-2") is not None

        httpd.shutdown()  # the endpoint goes away: the keys we have stay in force
        httpd.server_close()
        await gateway._refresh_keys()
        assert gateway.verifier.keys.get("identity-2") is not None
    finally:
        httpd.server_close()


def test_production_needs_a_real_key_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASHLINE_TRUSTED_KEYS_FILE", raising=False)
    secrets = {"admin_api_key": "prod-admin-key-from-a-secret", "internal_api_key": "prod-internal-key"}
    with pytest.raises(ValidationError, match="production key set"):
        Settings(env="production", **secrets)
    with pytest.raises(ValidationError, match="FLASHLINE_INTERNAL_API_KEY"):
        Settings(env="production", admin_api_key="prod-admin-key-from-a-secret", trusted_keys_url="https://idp/k")
    assert Settings(env="production", trusted_keys_url="https://idp/keys", **secrets)
