"""The admin API (separate port): revoke a user's connections or one subscription on every pod.

``Authorization: Bearer <GATEWAY_ADMIN_API_KEY>``. Commands go out on the control fanout, so
every pod, this one included, applies them within a broker round trip.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Send = Callable[[dict[str, Any]], Awaitable[None]]


def build_admin_app(*, api_key: str, send_control: Send) -> Starlette:
    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), api_key.encode())

    async def command(request: Request, kind: str, fields: tuple[str, ...]) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, status_code=422)
        if not isinstance(body, dict) or any(not isinstance(body.get(f), str) or not body.get(f) for f in fields):
            return JSONResponse({"detail": f"fields required: {', '.join(fields)}"}, status_code=422)
        message = {"type": kind, **{f: body[f] for f in fields}}
        await send_control(message)
        return JSONResponse({"sent": message}, status_code=202)

    async def disconnect(request: Request) -> JSONResponse:
        return await command(request, "disconnect", ("user",))

    async def unsubscribe(request: Request) -> JSONResponse:
        return await command(request, "unsubscribe", ("user", "channel"))

    return Starlette(
        routes=[
            Route("/admin/disconnect", disconnect, methods=["POST"]),
            Route("/admin/unsubscribe", unsubscribe, methods=["POST"]),
        ]
    )
