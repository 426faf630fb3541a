"""Key sets fetched from a URL, and verifiers that switch to a rotated set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flashline_auth import KeySet, SigningKey, TokenInvalid, TokenMinter, TokenVerifier
from flashline_contracts.tokens import UserClaims


class KeyServer:
    """Serves whatever key set ``document`` holds at /keys.json."""

    def __init__(self) -> None:
        self.document: dict[str, object] = {"keys": []}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(server.document).encode()
                self.send_response(200 if self.path == "/keys.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/keys.json"


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()


def test_fetched_key_set_verifies_and_rotation_swaps_keys(key_server: KeyServer) -> None:
    old = SigningKey.generate(kid="id-old", issuer="flashline-identity")
    new = SigningKey.generate(kid="id-new", issuer="flashline-identity")
    key_server.document = KeySet.of([old.trusted()]).to_json()
    verifier = TokenVerifier(KeySet.fetch(key_server.url), audience="flashline")
    token_old, _ = TokenMinter(old, audience="flashline", ttl_seconds=60).mint({"sub": "a"})
    token_new, _ = TokenMinter(new, audience="flashline", ttl_seconds=60).mint({"sub": "b"})
    assert verifier.verify(token_old, UserClaims).sub == "a"
    with pytest.raises(TokenInvalid, match="unknown kid"):
        verifier.verify(token_new, UserClaims)

    key_server.document = KeySet.of([new.trusted()]).to_json()
    verifier.use(KeySet.fetch(key_server.url))
    assert verifier.verify(token_new, UserClaims).sub == "b"
    with pytest.raises(TokenInvalid, match="unknown kid"):
        verifier.verify(token_old, UserClaims)


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(ValueError, match="http"):
        KeySet.fetch("file:///etc/passwd")
