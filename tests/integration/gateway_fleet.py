"""A fleet of push-gateway pods for tests: processes, a load balancer, a producer, SDK viewers.

- ``Fleet``: ``python -m push_gateway`` processes on free ports, one vhost, configured through
  the same variables ``make run GATEWAYS=3`` sets (GATEWAY_PORT, GATEWAY_ADMIN_PORT,
  GATEWAY_AMQP_URL, GATEWAY_POSITION_URLS, GATEWAY_NODE_NAME).
- ``LoadBalancer``: what a Kubernetes Service does in front of the pods, at TCP level. The SDK
  takes one URL, exactly as in production, where it points at the Service: each new connection
  goes round-robin to a pod whose ``/readyz`` answers 200 (probed every 0.1 s; a pod that refuses
  the TCP connect is skipped at once), and a connection whose pod goes away is closed on the client
  side. WebSocket close codes pass through untouched. ``pool`` restricts the endpoints, as a
  Service's selector would.
- ``Producer``: publishes ``PushPublication`` JSON to the fanout exchange ``flashline.push`` with
  aio-pika and publisher confirms (what an outbox relay does), assigning gapless offsets per
  channel, and answers the gateway's position lookups like the owning service.
- ``Viewer``: one official centrifuge-python client and its subscriptions, recording what it sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aio_pika
import httpx
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)

from flashline_contracts.publications import PushPublication
from flashline_contracts.topology import PUSH_EXCHANGE, PUSH_STREAM, PUSH_STREAM_ARGUMENTS
from flashline_service.testing import free_port

NAMESPACES_WITH_POSITIONS = ("stock", "order", "user", "tenant", "cart")


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


# ---- pods --------------------------------------------------------------------------------------


@dataclass
class Pod:
    name: str
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
    def running(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def client_ids(self) -> set[str]:
        """Every client id this pod ever accepted (its structured ``connect`` log lines)."""
        return {d["client"] for d in self.logs() if d.get("event") == "connect" and "client" in d}

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Fleet:
    """Gateway processes sharing one vhost; ``env`` applies to every pod, ``start`` may add more."""

    def __init__(
        self, *, amqp_url: str, keys_dir: Path, producer_url: str, log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.amqp_url = amqp_url
        self.keys_dir = keys_dir
        self.producer_url = producer_url
        self.log_dir = log_dir
        self.env = env or {}
        self.pods: dict[str, Pod] = {}
        self.http = httpx.AsyncClient(timeout=2.0)

    def launch(self, name: str, **env: str) -> Pod:
        port, admin_port = free_port(), free_port()
        full_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "FLASHLINE_ENV": "test",
            "FLASHLINE_TRUSTED_KEYS_FILE": str(self.keys_dir / "trusted.json"),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_ADMIN_PORT": str(admin_port),
            "GATEWAY_ADMIN_API_KEY": "fleet-test-admin-key",
            "GATEWAY_AMQP_URL": self.amqp_url,
            "GATEWAY_POSITION_URLS": ",".join(f"{ns}={self.producer_url}" for ns in NAMESPACES_WITH_POSITIONS),
            "GATEWAY_NODE_NAME": name,
            **self.env,
            **env,
        }
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "push_gateway"], env=full_env, stdout=out, stderr=subprocess.STDOUT
            )
        pod = self.pods[name] = Pod(name, process, port, admin_port, log_path)
        return pod

    async def start(self, *names: str, **env: str) -> list[Pod]:
        """Launch pods at once (they warm up in parallel) and wait until all are ready."""
        pods = [self.launch(name, **env) for name in names]
        await asyncio.gather(*(self.wait_ready(pod) for pod in pods))
        return pods

    async def readyz(self, pod: Pod) -> int:
        try:
            return (await self.http.get(f"{pod.http_url}/readyz")).status_code
        except httpx.HTTPError:
            return 0

    async def wait_ready(self, pod: Pod, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pod.running:
                raise RuntimeError(f"pod {pod.name} exited:\n{pod.tail()}")
            if await self.readyz(pod) == 200:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"pod {pod.name} not ready within {timeout}s:\n{pod.tail()}")

    async def metrics(self, pod: Pod) -> dict[str, float]:
        """The pod's Prometheus samples, ``name{labels}`` -> value."""
        text = (await self.http.get(f"{pod.http_url}/metrics")).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    async def pod_of(self, client_id: str | None, timeout: float = 5.0) -> Pod | None:
        """The pod whose ``connect`` line names ``client_id``, or None once ``timeout`` passes.

        Waits for the line: a pod writes it at the end of the loop turn that accepted the client,
        which may be after the client already read its connect reply.
        """

        def find() -> Pod | None:
            return next((pod for pod in self.pods.values() if client_id in pod.client_ids()), None)

        try:
            found: Pod | None = await eventually(find, timeout=timeout, what=f"a pod logs client {client_id}")
        except AssertionError:
            return None
        return found

    async def pod_name(self, client_id: str | None) -> str:
        pod = await self.pod_of(client_id)
        return pod.name if pod else "?"

    def live(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.running]

    def kill(self, pod: Pod) -> None:
        pod.process.send_signal(signal.SIGKILL)

    def terminate(self, pod: Pod) -> None:
        pod.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, pod: Pod, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while pod.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pod {pod.name} still running after {timeout}s")
            await asyncio.sleep(0.05)
        return pod.process.returncode

    async def close(self) -> None:
        for pod in self.pods.values():
            if pod.running:
                pod.process.kill()
                pod.process.wait()
        await self.http.aclose()


# ---- the load balancer -------------------------------------------------------------------------


class LoadBalancer:
    """Round-robin TCP proxy over the ready pods of a fleet (see the module docstring)."""

    def __init__(self, fleet: Fleet, *, probe_every: float = 0.1) -> None:
        self._fleet = fleet
        self._probe_every = probe_every
        self._ready: set[str] = set()
        self._next = 0
        self._server: asyncio.Server | None = None
        self._prober: asyncio.Task | None = None
        self._pipes: set[asyncio.Task] = set()
        self.pool: set[str] | None = None  # pod names allowed as endpoints; None: every pod
        self.port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        await self._probe_all()
        self._prober = asyncio.get_running_loop().create_task(self._probe_forever())

    async def _probe_all(self) -> None:
        pods = list(self._fleet.pods.values())
        codes = await asyncio.gather(*(self._fleet.readyz(p) for p in pods))
        self._ready = {p.name for p, code in zip(pods, codes, strict=True) if code == 200}

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self._probe_every)
            await self._probe_all()

    def _endpoints(self) -> list[Pod]:
        return [
            p
            for name, p in sorted(self._fleet.pods.items())
            if name in self._ready and (self.pool is None or name in self.pool)
        ]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            endpoints = self._endpoints()
            for _ in range(len(endpoints)):
                pod = endpoints[self._next % len(endpoints)]
                self._next += 1
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", pod.port)
                except OSError:
                    self._ready.discard(pod.name)  # refused: the pod is gone, skip it until it answers again
                    continue
                await _splice(reader, writer, up_reader, up_writer)
                return
            writer.close()  # no endpoint: like a Service without ready pods
        finally:
            self._pipes.discard(task)

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


async def _splice(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until either side closes, then close both."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    pipes = [asyncio.ensure_future(pipe(a_reader, b_writer)), asyncio.ensure_future(pipe(b_reader, a_writer))]
    try:
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pipes:
            task.cancel()
        for writer in (a_writer, b_writer):
            writer.close()


# ---- the producer ------------------------------------------------------------------------------


class Producer:
    """Publishes like an outbox relay and answers ``GET /internal/channels/{channel}`` like its service."""

    def __init__(self, amqp_url: str, *, epoch: str) -> None:
        self.amqp_url = amqp_url
        self.epoch = epoch
        self.latest: dict[str, dict[str, Any]] = {}
        self.lookups: list[str] = []
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._http: ThreadingHTTPServer | None = None
        self.url = ""

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(PUSH_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        stream = await channel.declare_queue(PUSH_STREAM, durable=True, arguments=PUSH_STREAM_ARGUMENTS)
        await stream.bind(self._exchange, routing_key="")
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        producer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                prefix = "/internal/channels/"
                channel = unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else ""
                producer.lookups.append(channel)
                position = producer.latest.get(channel)
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

        return Handler

    async def publish(self, channel: str, data: dict[str, Any]) -> int:
        """Publish the channel's next offset (confirmed by the broker); returns the offset."""
        assert self._exchange is not None
        offset = self.latest.get(channel, {}).get("offset", 0) + 1
        publication = PushPublication(
            channel=channel, offset=offset, epoch=self.epoch, data=data, published_at=datetime.now(UTC)
        )
        await self._exchange.publish(
            aio_pika.Message(
                publication.model_dump_json().encode(),
                content_type="application/json",
                message_id=f"{channel}@{self.epoch}:{offset}",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=channel,
        )
        self.latest[channel] = {"offset": offset, "epoch": self.epoch, "data": data}
        return offset

    def top(self, channel: str) -> int:
        return self.latest.get(channel, {}).get("offset", 0)

    async def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
        if self._connection is not None:
            await self._connection.close()


# ---- SDK viewers -------------------------------------------------------------------------------


@dataclass
class SubLog:
    """What one subscription saw: publications (offset, data) and every ``subscribed`` context."""

    channel: str
    pubs: list[tuple[int, Any]] = field(default_factory=list)
    subscribed: list[SubscribedContext] = field(default_factory=list)
    last_before: list[int] = field(default_factory=list)  # last offset received before each subscribed

    def missed(self, attempt: int) -> int:
        """Publications that subscribe ``attempt`` recovered: server position minus what the client had."""
        return self.subscribed[attempt].stream_position.offset - self.last_before[attempt]

    @property
    def offsets(self) -> list[int]:
        return [offset for offset, _ in self.pubs]

    @property
    def last(self) -> int:
        return self.pubs[-1][0] if self.pubs else 0


class _SubEvents(SubscriptionEventHandler):
    def __init__(self, log: SubLog) -> None:
        self._log = log

    async def on_publication(self, ctx: PublicationContext) -> None:
        self._log.pubs.append((ctx.pub.offset, ctx.pub.data))

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self._log.last_before.append(self._log.last)
        self._log.subscribed.append(ctx)


class Viewer(ClientEventHandler):
    """One centrifuge-python client (the official SDK) with the events it saw, time-stamped."""

    def __init__(self, name: str, url: str, token: str = "", *, max_reconnect_delay: float = 1.0) -> None:
        self.name = name
        self.client_ids: list[str] = []
        self.reconnects: list[tuple[float, int, str]] = []  # (monotonic time, code, reason) of lost connections
        self.disconnects: list[DisconnectedContext] = []
        self.subs: dict[str, SubLog] = {}
        self.client = Client(
            url,
            events=self,
            token=token,
            proxy=None,
            timeout=5.0,
            min_reconnect_delay=0.1,
            max_reconnect_delay=max_reconnect_delay,
        )

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.client_ids.append(ctx.client)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        if self.client_ids:  # not the initial connect() call
            self.reconnects.append((time.monotonic(), ctx.code, ctx.reason))

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnects.append(ctx)

    @property
    def client_id(self) -> str | None:
        return self.client_ids[-1] if self.client_ids else None

    @property
    def connected(self) -> bool:
        return self.client.state.value == "connected"

    async def connect(self, timeout: float = 10.0) -> None:
        await self.client.connect()
        await self.client.ready(timeout)

    async def subscribe(self, channel: str, token: str = "", timeout: float = 10.0) -> SubLog:
        log = self.subs[channel] = SubLog(channel)
        sub = self.client.new_subscription(channel, events=_SubEvents(log), token=token)
        await sub.subscribe()
        await sub.ready(timeout)
        return log

    async def disconnect(self) -> None:
        await self.client.disconnect()
