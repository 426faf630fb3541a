"""A running gateway process fed by real RabbitMQ (this run's throwaway vhost), and helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aio_pika
import httpx
import pytest

from flashline_service.testing import free_port
from push_gateway.broker_rabbitmq import StreamOptions, declare_push_log


@dataclass
class FakeProducer:
    """Answers ``GET /internal/channels/{channel}`` like the producing services do."""

    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""


def _start_fake_producer() -> tuple[FakeProducer, ThreadingHTTPServer]:
    producer = FakeProducer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = "/internal/channels/"
            if not self.path.startswith(prefix):
                self.send_error(404)
                return
            channel = unquote(self.path[len(prefix) :])
            producer.requests.append(channel)
            position = producer.positions.get(channel)
            if position is None:
                self.send_error(404)
                return
            body = json.dumps({"channel": channel, **position}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    producer.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return producer, server


@pytest.fixture(scope="session")
def fake_producer() -> Iterator[FakeProducer]:
    producer, server = _start_fake_producer()
    yield producer
    server.shutdown()


@dataclass
class GatewayProcess:
    process: subprocess.Popen
    port: int
    admin_port: int
    log_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines


ADMIN_KEY = "test-admin-key"


def start_gateway(
    *,
    amqp_url: str,
    keys_dir: Path,
    producer_url: str,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> GatewayProcess:
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "FLASHLINE_ENV": "test",
        "FLASHLINE_TRUSTED_KEYS_FILE": str(keys_dir / "trusted.json"),
        "GATEWAY_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_ADMIN_PORT": str(admin_port),
        "GATEWAY_ADMIN_API_KEY": ADMIN_KEY,
        "GATEWAY_AMQP_URL": amqp_url,
        "GATEWAY_POSITION_URLS": ",".join(
            f"{ns}={producer_url}" for ns in ("stock", "order", "user", "tenant", "cart")
        ),
        "GATEWAY_PING_INTERVAL": "2",
        "GATEWAY_PONG_TIMEOUT": "2",
        "GATEWAY_CLIENT_QUEUE_BYTES": str(256 * 1024),
        "GATEWAY_TOKEN_GRACE_SECONDS": "1",
        "GATEWAY_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    log_path = log_dir / f"gateway-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "push_gateway"], env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
    )
    gateway = GatewayProcess(process, port, admin_port, log_path)
    if wait_ready:
        wait_until_ready(gateway)
    return gateway


def wait_until_ready(gateway: GatewayProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"gateway exited: {gateway.log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{gateway.http_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway not ready: {gateway.log_path.read_text()[-3000:]}")


def stop_gateway(gateway: GatewayProcess) -> None:
    if gateway.process.poll() is None:
        gateway.process.terminate()
        try:
            gateway.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()


@pytest.fixture(scope="session")
def gateway(
    amqp_url: str, keys_dir: Path, fake_producer: FakeProducer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = start_gateway(
        amqp_url=amqp_url,
        keys_dir=keys_dir,
        producer_url=fake_producer.url,
        log_dir=tmp_path_factory.mktemp("gateway-logs"),
    )
    yield process
    stop_gateway(process)


class Publisher:
    """Publishes PushPublications the way producers' outbox relays do."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def __aenter__(self) -> Publisher:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        self._exchange = await declare_push_log(channel, StreamOptions())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._connection is not None
        await self._connection.close()

    async def publish(
        self, channel: str, offset: int, data: dict[str, Any], *, epoch: str = "e1", exclude_client: str | None = None
    ) -> None:
        assert self._exchange is not None
        body = {
            "channel": channel,
            "offset": offset,
            "epoch": epoch,
            "data": data,
            "published_at": datetime.now(UTC).isoformat(),
        }
        if exclude_client:
            body["exclude_client"] = exclude_client
        await self._exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(), content_type="application/json", message_id=f"{channel}@{epoch}:{offset}"
            ),
            routing_key=channel,
        )


@pytest.fixture
async def publisher(amqp_url: str):
    async with Publisher(amqp_url) as pub:
        yield pub


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
