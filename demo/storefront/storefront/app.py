"""The storefront's web server: the static bundle, ``/config.json`` and (development only) ``/dev/token``.

The browser talks to the services' REST APIs and to the push gateway directly; this server only
hands out the bundle and tells the page where everything is. In development and test it also
stands in for the identity provider of the sign-in switcher, minting dev user tokens; anywhere
else that route does not exist.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from storefront.settings import StorefrontSettings

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
ROLES = ("customer", "staff")


class NoCache:
    """Development server: the page, config and bundle are always revalidated (rebuilds show at once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def build_app(settings: StorefrontSettings) -> Starlette:
    async def config(request: Request) -> Response:
        return JSONResponse(settings.public_config())

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def dev_token(request: Request) -> Response:
        if not settings.dev_tokens_enabled:  # the route is not even mounted then; belt and braces
            return _error(404, "not found")
        try:
            body = await request.json()
        except ValueError:
            return _error(422, "expected a JSON body {user, role, tenant?}")
        if not isinstance(body, dict):
            return _error(422, "expected a JSON object")
        user, role, tenant = body.get("user"), body.get("role", "customer"), body.get("tenant")
        if not isinstance(user, str) or not NAME.match(user):
            return _error(422, "user: 1-40 characters of a-z, 0-9, '.', '_' or '-'")
        if role not in ROLES:
            return _error(422, f"role: one of {', '.join(ROLES)}")
        if tenant is not None and (not isinstance(tenant, str) or not NAME.match(tenant)):
            return _error(422, "tenant: 1-40 characters of a-z, 0-9, '.', '_' or '-'")
        from flashline_auth.dev_identity import user_token

        if not (settings.dev_keys_dir / "identity.pem").exists():
            return _error(503, "no development identity key: run `make run` (it creates .dev/keys)")
        ttl = settings.token_ttl_seconds
        token = user_token(str(settings.dev_keys_dir), user=user, role=role, tenant=tenant, ttl_seconds=ttl)
        return JSONResponse(
            {"token": token, "user": user, "role": role, "tenant": tenant, "expires_at": int(time.time()) + ttl}
        )

    routes: list[Route | Mount] = [
        Route("/config.json", config),
        Route("/healthz", healthz),
    ]
    if settings.dev_tokens_enabled:
        routes.append(Route("/dev/token", dev_token, methods=["POST"]))
    routes.append(Mount("/", StaticFiles(directory=Path(settings.static_dir), html=True, check_dir=False)))
    app = Starlette(routes=routes)
    app.add_middleware(NoCache)
    app.state.settings = settings
    return app
