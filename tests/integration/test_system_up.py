"""`make run`'s promise: every service and gateway answers its health and readiness endpoints."""

from __future__ import annotations

import httpx

from .conftest import Stack


async def test_every_process_is_healthy_and_ready(http: httpx.AsyncClient, stack: Stack) -> None:
    urls = [stack.url(svc) for svc in ("catalog", "orders", "cart")]
    urls += [f"http://127.0.0.1:{port}" for port in stack.config.gateway_ports]
    for url in urls:
        assert (await http.get(f"{url}/healthz")).status_code == 200, url
        ready = await http.get(f"{url}/readyz")
        assert ready.status_code == 200, (url, ready.text)
