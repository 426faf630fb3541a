"""Gateway abuse at system level, against one real gateway process of the stack.

What services/push-gateway/tests already cover is not repeated here (malformed JSON 3501, one
oversized frame 1009, a command flood 3509, a missing pong 3012, a slow reader 3008, and the
hypothesis fuzz of the protocol core). Added: invalid UTF-8, deeply nested JSON, thousands of
subscribe commands, slowloris handshakes, a connection flood from one address: each answered with
the documented code, the gateway's memory stays bounded, and a bystander subscriber keeps getting
live stock updates throughout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import psutil
import websockets
from flashline_devstack.stack import gateway_name
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .clients import create_product, subscribe
from .conftest import Stack
from .security_helpers import Raw, connected, error_code

GATEWAY = 2
RSS_GROWTH_LIMIT = 96 * 1024 * 1024


def _rss(stack: Stack) -> int:
    proc = stack.group.procs[gateway_name(stack.config, GATEWAY)]
    assert proc.popen is not None
    return psutil.Process(proc.popen.pid).memory_info().rss


async def _close_code(url: str, frame: str | bytes, *, connect_first: bool = True) -> int:
    raw = await Raw.open(url)
    try:
        if connect_first:
            await raw.call("connect", {})
        await raw.ws.send(frame)
        return await raw.closed(10)
    finally:
        await raw.close()


async def _bystander_still_live(http: httpx.AsyncClient, stack: Stack, watcher: Any, product: dict[str, Any]) -> None:
    response = await http.post(
        f"{stack.url('catalog')}/products/{product['id']}/restock",
        json={"quantity": 1},
        headers=stack.auth("carol", "staff"),
    )
    assert response.status_code == 200, response.text
    version = response.json().get("version") or response.json()["stream"]["offset"]
    await watcher.wait_for(lambda d: d["version"] >= version, timeout=10)


async def test_bad_frames_get_documented_codes(http: httpx.AsyncClient, stack: Stack) -> None:
    url = stack.gateway_urls[GATEWAY]
    product = await create_product(http, stack, stock=5)
    watcher = await subscribe(url, f"stock:{product['id']}")
    rss_before = _rss(stack)
    try:
        # invalid UTF-8: as a binary frame the protocol decoder refuses it (3501); the websockets
        # layer refuses a text frame with invalid UTF-8 before the protocol sees it (1007)
        assert await _close_code(url, b'{"id":2,"subscribe":{"channel":"stock:\xff\xfe"}}') == 3501
        assert await _close_code(url, b'{"id":1,"connect":{"token":"\xc3\x28"}}', connect_first=False) == 3501
        # deeply nested JSON inside the frame size limit: refused, no recursion blow-up
        nested = '{"id":2,"subscribe":{"channel":"stock:1","data":' + "[" * 30_000 + "]" * 30_000 + "}}"
        assert len(nested) < 64 * 1024
        assert await _close_code(url, nested) == 3501
        assert await _close_code(url, "[" * 60_000, connect_first=False) == 3501
        # many oversized frames in a row do not add up
        for _ in range(20):
            assert await _close_code(url, "x" * 200_000) == 1009
        await _bystander_still_live(http, stack, watcher, product)
    finally:
        await watcher.close()
    assert _rss(stack) - rss_before < RSS_GROWTH_LIMIT


async def test_thousands_of_subscribe_commands(http: httpx.AsyncClient, stack: Stack) -> None:
    url = stack.gateway_urls[GATEWAY]
    product = await create_product(http, stack, stock=5)
    watcher = await subscribe(url, f"stock:{product['id']}")
    rss_before = _rss(stack)
    try:
        # paced under the command rate: the channel cap answers 106 once 128 are held
        raw = await connected(url)
        codes: dict[int | None, int] = {}
        for start in range(0, 400, 40):
            batch = [
                {"id": 10_000 + i, "subscribe": {"channel": f"stock:{9_000_000 + i}"}} for i in range(start, start + 40)
            ]
            await raw.ws.send("\n".join(json.dumps(c) for c in batch))
            await raw.call("presence_stats", {"channel": "stock:9000000"})  # a round trip
            await asyncio.sleep(0.9)
        for reply_id, reply in raw.replies.items():
            if reply_id >= 10_000:
                code = error_code(reply)
                codes[code] = codes.get(code, 0) + 1
        assert codes.get(None, 0) == 128, codes  # max_channels_per_connection
        assert codes.get(106, 0) > 0, codes
        await raw.close()

        # unpaced: five thousand subscribes in frames as fast as possible -> 111, then closed 3509
        raw = await connected(url)
        try:
            for start in range(0, 5000, 500):
                batch = [
                    {"id": 2 + i, "subscribe": {"channel": f"stock:{8_000_000 + i}"}} for i in range(start, start + 500)
                ]
                await raw.ws.send("\n".join(json.dumps(c) for c in batch))
        except ConnectionClosed:
            pass
        assert await raw.closed(10) == 3509
        await _bystander_still_live(http, stack, watcher, product)
    finally:
        await watcher.close()
    assert _rss(stack) - rss_before < RSS_GROWTH_LIMIT


async def _slowloris(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    await writer.drain()
    return reader, writer


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        while await asyncio.wait_for(reader.read(1024), timeout):
            pass
        return True
    except (TimeoutError, ConnectionError):
        return False


async def test_slowloris_and_connection_flood_from_one_address(http: httpx.AsyncClient, stack: Stack) -> None:
    url, port = stack.gateway_urls[GATEWAY], stack.config.gateway_ports[GATEWAY]
    product = await create_product(http, stack, stock=5)
    watcher = await subscribe(url, f"stock:{product['id']}")
    rss_before = _rss(stack)
    lorises = await asyncio.gather(*(_slowloris(port) for _ in range(100)))
    floods: list[Any] = []
    refused: dict[int, int] = {}

    async def flood_one() -> None:
        try:
            ws = await websockets.connect(url, proxy=None, open_timeout=10)
            floods.append(ws)  # opened and then silent: never sends connect
        except InvalidStatus as exc:
            refused[exc.response.status_code] = refused.get(exc.response.status_code, 0) + 1
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            refused[code] = refused.get(code, 0) + 1

    try:
        await asyncio.gather(*(flood_one() for _ in range(300)))
        # while 100 half-open handshakes and 300 silent sockets sit there, a real client gets in
        late = await connected(url)
        await late.close()
        await _bystander_still_live(http, stack, watcher, product)

        # the gateway sheds them: half-open handshakes (open timeout) and silent sockets (connect timeout)
        results = await asyncio.gather(*(_closed_by_server(r, 20) for r, _ in lorises))
        assert all(results), f"{results.count(False)} half-open handshakes still open"

        async def closed_code(ws: Any) -> int:
            try:
                await asyncio.wait_for(ws.recv(), 20)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else 1006
            return 0

        codes = await asyncio.gather(*(closed_code(ws) for ws in floods))
        assert floods and set(codes) <= {3501, 3010, 3012, 3502}, sorted(set(codes))
        assert set(refused) <= {3013, 503, 429}, refused
    finally:
        for _, writer in lorises:
            writer.close()
        for ws in floods:
            await ws.close()
        await watcher.close()
    assert _rss(stack) - rss_before < RSS_GROWTH_LIMIT
