"""Hot-SKU buyers, in their own process: each buyer watches its ``user#`` channel and orders in a loop.

A buyer connects to the gateway with its JWT and subscribes to ``user#<id>`` (its personal
channel: every status change of its orders arrives there), then repeatedly: ``POST /orders``
(one unit of the hot product) and waits for the order's ``confirmed`` or ``rejected`` push. It
stops at the deadline or when the product is sold out. Times are wall-clock (shared with the
coordinator): POST sent, 202 received, decision pushed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
from websockets.asyncio.client import connect

from bench.core.http import LeanHttp


async def buyer(i: int, spec: dict[str, Any], token: str, out: list[dict[str, Any]], state: dict[str, Any]) -> None:
    user = f"bench-hot-{spec['run']}-{i}"
    channel = f"user#{user}"
    decided: dict[int, tuple[str, float]] = {}
    waiters: dict[int, asyncio.Future] = {}
    async with connect(spec["gateway_url"], compression=None, max_size=None, proxy=None) as ws:
        await ws.send(
            orjson.dumps({"id": 1, "connect": {"token": token, "name": "bench-buyer"}}).decode()
            + "\n"
            + orjson.dumps({"id": 2, "subscribe": {"channel": channel}}).decode()
        )
        subscribed = asyncio.Event()

        async def listen() -> None:
            async for message in ws:
                now = time.time()
                for line in (message.encode() if isinstance(message, str) else message).split(b"\n"):
                    if line == b"{}":
                        await ws.send("{}")
                        continue
                    doc = orjson.loads(line)
                    if doc.get("id") == 2:
                        subscribed.set()
                    pub = doc.get("push", {}).get("pub")
                    if pub:
                        data = pub.get("data") or {}
                        if data.get("status") in ("confirmed", "rejected"):
                            oid = data["order_id"]
                            decided[oid] = (data["status"], now)
                            fut = waiters.pop(oid, None)
                            if fut is not None and not fut.done():
                                fut.set_result(decided[oid])

        listener = asyncio.ensure_future(listen())
        http = LeanHttp(spec["orders_url"])
        await asyncio.wait_for(subscribed.wait(), 30)
        state["ready"] += 1
        while state["ready"] < spec["buyers"] and time.time() < spec["deadline"]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        try:
            while time.time() < spec["deadline"] and not state["sold_out"]:
                t0 = time.time()
                status_code, body = await http.post_json(
                    "/orders",
                    {"items": [{"product_id": spec["product_id"], "quantity": 1}]},
                    {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                )
                t_accepted = time.time()
                if status_code != 202:
                    out.append({"t0": t0, "status": f"http {status_code}"})
                    await asyncio.sleep(0.05)
                    continue
                oid = body["id"]
                if oid in decided:
                    result = decided[oid]
                else:
                    fut = asyncio.get_running_loop().create_future()
                    waiters[oid] = fut
                    try:
                        result = await asyncio.wait_for(fut, 30)
                    except TimeoutError:
                        out.append({"t0": t0, "t_accepted": t_accepted, "order": oid, "status": "no decision pushed"})
                        continue
                status, t_dec = result
                out.append({"t0": t0, "t_accepted": t_accepted, "t_decided": t_dec, "order": oid, "status": status})
                if status == "rejected":
                    state["sold_out"] = True
        finally:
            listener.cancel()
            http.close()


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    from flashline_auth.dev import load_dev_signing_key
    from flashline_auth.minting import TokenMinter

    minter = TokenMinter(load_dev_signing_key(spec["keys_dir"], "identity"), audience="flashline", ttl_seconds=3600)
    tokens = [
        minter.mint({"sub": f"bench-hot-{spec['run']}-{i}", "role": "customer"})[0] for i in range(spec["buyers"])
    ]
    out: list[dict[str, Any]] = []
    state = {"ready": 0, "sold_out": False}
    results = await asyncio.gather(
        *(buyer(i, spec, tokens[i], out, state) for i in range(spec["buyers"])), return_exceptions=True
    )
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {"orders": out, "errors": errors[:5], "buyer_errors": len(errors)}


def buyers_main(spec: dict[str, Any], queue: Any) -> None:
    try:
        import uvloop

        result = uvloop.run(_main(spec))
    except ImportError:
        result = asyncio.run(_main(spec))
    queue.put(result)
