"""Run a service app under uvicorn (the ``python -m <service>`` entrypoint)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flashline_service.logging import configure_logging
from flashline_service.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        proxy_headers=True,
    )
