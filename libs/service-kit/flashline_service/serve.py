"""Run a service app under uvicorn (the ``python -m <service>`` entrypoint)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flashline_service.logging import configure_logging
from flashline_service.settings import ServiceSettings

# An idle keep-alive connection is closed by the client or proxy first, never by the service: a
# request sent on a connection the server is closing at that moment fails with a reset, and a
# POST cannot be retried blindly. Above ingress-nginx's 60 s upstream default, and httpx's 5 s.
KEEP_ALIVE_SECONDS = 75


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        proxy_headers=True,
    )
