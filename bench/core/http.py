"""A lean HTTP/1.1 keep-alive client for load: one connection, one request at a time.

httpx costs ~10 ms of the load tool's CPU per order at hot-SKU rates (its pool, its models),
more than the orders service spends serving the request; the load tool must not be what a
benchmark measures. This writes one pre-formatted request and parses the reply with
``httptools`` (uvicorn's parser): a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson


class _Reply(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._done: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result((self._parser.get_status_code(), b"".join(self._body)))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._body = []
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._done

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)


class LeanHttp:
    """``client = LeanHttp(base_url)``, then ``await client.post_json(path, body, headers)``.

    A connection the server closed while idle (keep-alive timeout) is reopened, and a request
    it was lost with is sent again: safe here, every request carries an ``Idempotency-Key``.
    """

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._reply: _Reply | None = None

    async def post_json(self, path: str, body: object, headers: dict[str, str]) -> tuple[int, Any]:
        payload = orjson.dumps(body)
        head = [f"POST {path} HTTP/1.1", f"Host: {self._host}:{self._port}", "Content-Type: application/json"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(payload)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        for attempt in range(2):
            if self._reply is None or self._reply.transport is None or self._reply.transport.is_closing():
                _, self._reply = await asyncio.get_running_loop().create_connection(_Reply, self._host, self._port)
            try:
                status, raw = await self._reply.send(request)
            except ConnectionError:
                self._reply = None
                if attempt:
                    raise
                continue
            return status, orjson.loads(raw) if raw else None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._reply is not None and self._reply.transport is not None:
            self._reply.transport.close()
