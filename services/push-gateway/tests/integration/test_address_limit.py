"""A connection flood from one address is capped with 3013; other addresses are unaffected.

The gateway here caps 3 connections per address, exempts nothing and trusts 127.0.0.1 as a proxy:
clients connect from 127.0.0.2 and 127.0.0.3 (their own addresses), and through 127.0.0.1 with an
``X-Forwarded-For`` naming the client.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from .conftest import start_gateway, stop_gateway

CAP = 3


@pytest.fixture
def capped_gateway(amqp_url, keys_dir, fake_producer, tmp_path):
    gateway = start_gateway(
        amqp_url=amqp_url,
        keys_dir=keys_dir,
        producer_url=fake_producer.url,
        log_dir=tmp_path,
        extra_env={
            "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
            "GATEWAY_ADDRESS_LIMIT_EXEMPT": "",
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    yield gateway
    stop_gateway(gateway)


async def _attempt(gateway, source: str, forwarded_for: str | None = None) -> tuple[Any, int | None]:
    """(open socket, None) when the client got in, else (None, the close code it got)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    ws = await websockets.connect(gateway.ws_url, proxy=None, local_addr=(source, 0), additional_headers=headers)
    try:
        await ws.send(json.dumps({"id": 1, "connect": {}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    except ConnectionClosed as exc:
        await ws.close()
        return None, exc.rcvd.code if exc.rcvd else 1006
    assert "connect" in reply, reply
    return ws, None


async def _codes(gateway, source: str, n: int, forwarded_for: str | None = None) -> tuple[list[Any], list[int | None]]:
    results = [await _attempt(gateway, source, forwarded_for) for _ in range(n)]
    return [ws for ws, _ in results if ws is not None], [code for _, code in results]


async def test_one_address_is_capped_while_another_is_unaffected(capped_gateway):
    gateway = capped_gateway
    held: list[Any] = []
    try:
        opened, codes = await _codes(gateway, "127.0.0.2", CAP + 2)
        held += opened
        assert codes == [None] * CAP + [3013, 3013]
        # an untrusted peer cannot escape the cap by naming another address
        opened, codes = await _codes(gateway, "127.0.0.2", 1, forwarded_for="198.51.100.1")
        assert codes == [3013]
        # another address gets in while the first one is full
        opened, codes = await _codes(gateway, "127.0.0.3", 2)
        held += opened
        assert codes == [None, None]

        # behind a trusted proxy (127.0.0.1) the forwarded address is what counts
        opened, codes = await _codes(gateway, "127.0.0.1", CAP + 1, forwarded_for="203.0.113.7")
        held += opened
        assert codes == [None] * CAP + [3013]
        opened, codes = await _codes(gateway, "127.0.0.1", 1, forwarded_for="203.0.113.8")
        held += opened
        assert codes == [None]

        # a closed connection frees its address's slot
        await held.pop(0).close()
        for _ in range(50):
            ws, _ = await _attempt(gateway, "127.0.0.2")
            if ws is not None:
                held.append(ws)
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the address stayed capped after one of its connections closed")

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{gateway.http_url}/metrics")).text
        line = next(x for x in metrics.splitlines() if 'reason="address limit"' in x and "_total" in x)
        assert float(line.rsplit(" ", 1)[1]) >= 4
        refusals = [x for x in gateway.logs() if x.get("event") == "connections refused for an address over its limit"]
        assert refusals and refusals[0]["address"] == "127.0.0.2"
        assert len(refusals) < 4, "refusals are logged rate-limited, not one line each"
    finally:
        for ws in held:
            await ws.close()
