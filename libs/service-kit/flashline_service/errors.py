"""Edge mapping of infrastructure failures: a database outage is a fast 503, never a 500.

Text PostgreSQL cannot store (a NUL character) is bad input: 422, not a 500.

A pure ASGI middleware rather than an exception handler: Starlette re-raises exceptions after
handlers for bare ``Exception`` have run, which would turn the 503 into a crashed request.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashline_messaging.errors import is_transient

log = logging.getLogger("flashline.errors")

# PostgreSQL refuses text it cannot store (U+0000, characters outside the encoding): bad input, not a crash
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for attr in ("sqlstate", "pgcode"):
            code = getattr(current, attr, None)
            if isinstance(code, str):
                return code
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


class TransientFailureMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if not started and _sqlstate(exc) in UNSTORABLE_TEXT_SQLSTATES:
                log.info("%s %s: unstorable text refused: %s", scope.get("method"), scope.get("path"), exc)
                response = JSONResponse({"detail": "text contains characters that cannot be stored"}, status_code=422)
                await response(scope, receive, send)
                return
            if started or not is_transient(exc):
                raise
            log.warning("%s %s: dependency unavailable: %s", scope.get("method"), scope.get("path"), exc)
            response = JSONResponse(
                {"detail": "service temporarily unavailable"}, status_code=503, headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(TransientFailureMiddleware)
