"""Hand-written clients doing what SDKs never do: malformed input, huge frames, floods, not reading."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from .conftest import unique
from .sdk import SubEvents, new_client


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def _raw(gateway, **kwargs):
    ws = await websockets.connect(gateway.ws_url, max_size=None, proxy=None, **kwargs)
    await ws.send(json.dumps({"id": 1, "connect": {}}))
    reply = json.loads(await ws.recv())
    assert "connect" in reply
    return ws


async def _closed_with(ws) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006


async def test_malformed_inputs_are_answered_without_harm(gateway):
    ws = await _raw(gateway)
    await ws.send('{"id":2,"publish":{"channel":"stock:1","data":{}}}\n{"id":3,"rpc":{}}\n{"id":4,"warp":{}}')
    replies = {}
    while len(replies) < 3:
        for line in (await ws.recv()).split("\n"):
            message = json.loads(line)
            if "id" in message:
                replies[message["id"]] = message["error"]["code"]
    assert replies == {2: 103, 3: 104, 4: 104}
    await ws.send("{not json")
    assert await _closed_with(ws) == 3501

    ws = await _raw(gateway)
    await ws.send(json.dumps({"id": 2, "subscribe": {"channel": "stock:1", "pad": "x" * 70_000}}))
    assert await _closed_with(ws) == 1009

    ws = await _raw(gateway)
    await ws.send("\n".join(json.dumps({"id": i, "rpc": {}}) for i in range(2, 400)))
    assert await _closed_with(ws) == 3509

    assert (await _get(f"{gateway.http_url}/healthz")).status_code == 200
    client, _ = new_client(gateway.ws_url)
    await client.connect()
    await client.ready(5)
    await client.disconnect()


async def test_missing_pong_closes_3012(gateway):
    ws = await _raw(gateway)
    assert await asyncio.wait_for(ws.recv(), 5) == "{}"  # a ping every 2 s here; we never answer
    assert await _closed_with(ws) == 3012


async def test_slow_client_dropped_with_3008_while_fast_one_keeps_receiving(gateway, publisher, tokens):
    channel = unique("cart:")
    grant = tokens.grant("cart", user="", channel=channel)
    slow = await websockets.connect(gateway.ws_url, max_size=None, proxy=None, max_queue=1)
    await slow.send(json.dumps({"id": 1, "connect": {}}))
    slow_id = json.loads(await slow.recv())["connect"]["client"]
    await slow.send(json.dumps({"id": 2, "subscribe": {"channel": channel, "token": grant}}))
    assert "subscribe" in json.loads(await slow.recv())
    fast, _ = new_client(gateway.ws_url)
    await fast.connect()
    events = SubEvents()
    sub = fast.new_subscription(channel, events=events, token=grant)
    await sub.subscribe()
    await events.next_subscribed()
    pad = "x" * 16_000
    total = 800  # ~13 MB: more than the socket buffers between the two hold
    for offset in range(1, total + 1):
        await publisher.publish(channel, offset, {"version": offset, "pad": pad})
    got = 0
    while got < total:
        pub = await events.next_pub(10)
        got = pub.offset
    assert got == total

    async def dropped() -> bool:
        return any(
            line.get("event") == "disconnect" and line.get("client") == slow_id and line.get("code") == 3008
            for line in gateway.logs()
        )

    for _ in range(50):
        if await dropped():
            break
        await asyncio.sleep(0.1)
    assert await dropped()
    metrics = (await _get(f"{gateway.http_url}/metrics")).text
    assert 'flashline_gateway_disconnects_total{code="3008"}' in metrics
    await fast.disconnect()
    await slow.close()


async def test_probes(gateway):
    assert (await _get(f"{gateway.http_url}/readyz")).status_code == 200
    metrics = (await _get(f"{gateway.http_url}/metrics")).text
    for name in (
        "flashline_gateway_connections",
        "flashline_gateway_publications_total",
        "flashline_gateway_fanout_lag_seconds_bucket",
        "flashline_gateway_deliveries_total",
    ):
        assert name in metrics
    assert (await _get(f"{gateway.http_url}/nope")).status_code == 404
