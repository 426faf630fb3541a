"""The official centrifuge JS SDK (Node) against the gateway: subscribe, receive, recover."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from .conftest import unique

SCRIPT = Path(__file__).parent / "js" / "recover.mjs"
REPO_ROOT = Path(__file__).resolve().parents[4]  # services/push-gateway/tests/integration -> repo

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (REPO_ROOT / "node_modules" / "centrifuge").exists(),
    reason="node or the centrifuge npm package is missing",
)


class NodeClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next(self, event: str, timeout: float = 10.0) -> dict:
        async def read() -> dict:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError("node client exited")
                message = json.loads(line)
                if message["event"] == event:
                    return message

        return await asyncio.wait_for(read(), timeout)

    async def command(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()


async def test_js_sdk_subscribes_receives_and_recovers(gateway, publisher, tokens):
    channel = unique("order:")
    # Node resolves the bare imports by walking up from the script's folder to the repo's node_modules.
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        gateway.ws_url,
        tokens.user("alice"),
        channel,
        tokens.grant("orders", user="alice", channel=channel),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(REPO_ROOT),
    )
    client = NodeClient(process)
    try:
        await client.next("connected")
        await client.next("subscribed")
        await publisher.publish(channel, 1, {"status": "pending"})
        assert (await client.next("pub"))["offset"] == 1
        await client.command("disconnect")
        await client.next("disconnected")
        await publisher.publish(channel, 2, {"status": "confirmed"})
        await publisher.publish(channel, 3, {"status": "paid"})
        await asyncio.sleep(0.3)
        await client.command("connect")
        subscribed = await client.next("subscribed")
        assert subscribed["wasRecovering"] and subscribed["recovered"]
        recovered = [await client.next("pub"), await client.next("pub")]
        assert [(p["offset"], p["data"]["status"]) for p in recovered] == [(2, "confirmed"), (3, "paid")]
        await client.command("exit")
        await asyncio.wait_for(process.wait(), 5)
    finally:
        if process.returncode is None:
            process.kill()
