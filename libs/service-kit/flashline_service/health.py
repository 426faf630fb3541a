"""``/healthz`` (the process lives), ``/readyz`` (it can serve: database and broker reachable), ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]

router = APIRouter(tags=["operations"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _run(checks: dict[str, ReadinessCheck]) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(2.0):  # not wait_for, which can drop a cancellation on 3.11
                results[name] = await check()
        except Exception:  # noqa: BLE001 - any failure means not ready
            results[name] = False
    return results


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers. The broker is reported, not required: while RabbitMQ is
    down the API keeps serving and the outbox holds what it must publish."""
    required = await _run(request.app.state.readiness_checks)
    informational = await _run(request.app.state.status_checks)
    ready = all(required.values())
    return JSONResponse({"ready": ready, "checks": required | informational}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
