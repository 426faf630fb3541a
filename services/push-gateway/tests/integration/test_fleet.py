"""Two pods on one RabbitMQ: every pod delivers, a cold pod warms its history, drain releases with 3001."""

from __future__ import annotations

import asyncio
import json

import websockets
from websockets.exceptions import ConnectionClosed

from .conftest import start_gateway, stop_gateway, unique


async def _client(url: str, token: str = ""):
    ws = await websockets.connect(url, max_size=None, proxy=None)
    await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
    assert "connect" in json.loads(await ws.recv())
    return ws


async def _reply(ws, command_id: int) -> dict:
    while True:
        for line in (await asyncio.wait_for(ws.recv(), 10)).split("\n"):
            message = json.loads(line)
            if message.get("id") == command_id:
                return message


async def _pub(ws) -> dict:
    while True:
        for line in (await asyncio.wait_for(ws.recv(), 10)).split("\n"):
            message = json.loads(line)
            if "pub" in message.get("push", {}):
                return message["push"]["pub"]


async def test_second_pod_warms_history_delivers_and_drains(
    gateway, publisher, tokens, amqp_url, keys_dir, fake_producer, tmp_path
):
    channel = unique("order:")
    grant = tokens.grant("orders", user="alice", channel=channel)
    for offset in (1, 2, 3):
        await publisher.publish(channel, offset, {"v": offset})
    second = start_gateway(
        amqp_url=amqp_url,
        keys_dir=keys_dir,
        producer_url=fake_producer.url,
        log_dir=tmp_path,
        extra_env={"GATEWAY_DRAIN_SECONDS": "1"},
    )
    try:
        on_b = await _client(second.ws_url, tokens.user("alice"))
        await on_b.send(
            json.dumps(
                {
                    "id": 2,
                    "subscribe": {"channel": channel, "token": grant, "recover": True, "epoch": "e1", "offset": 1},
                }
            )
        )
        result = (await _reply(on_b, 2))["subscribe"]
        assert result["recovered"] is True, "history warmed from the stream before ready"
        assert [p["offset"] for p in result["publications"]] == [2, 3]
        assert fake_producer.requests.count(channel) == 0
        on_a = await _client(gateway.ws_url, tokens.user("alice"))
        await on_a.send(json.dumps({"id": 2, "subscribe": {"channel": channel, "token": grant}}))
        assert (await _reply(on_a, 2))["subscribe"]["offset"] == 3
        await publisher.publish(channel, 4, {"v": 4})
        assert (await _pub(on_a))["offset"] == 4 and (await _pub(on_b))["offset"] == 4
        second.process.terminate()
        try:
            while True:
                await asyncio.wait_for(on_b.recv(), 10)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 3001
        await on_a.close()
    finally:
        stop_gateway(second)
    assert second.process.returncode == 0
