"""``python -m push_gateway``: run one gateway pod until SIGTERM/SIGINT, then drain and exit."""

from __future__ import annotations

import asyncio
import logging
import signal

from push_gateway import logs
from push_gateway.bootstrap import Gateway
from push_gateway.settings import Settings

log = logging.getLogger("push_gateway")


async def run(settings: Settings) -> None:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(gateway.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        stopping.cancel()
        raise starting.exception()  # type: ignore[misc]
    await stop.wait()
    starting.cancel()
    await gateway.drain()
    await gateway.stop()
    log.info("gateway stopped", extra={"node": gateway.node_id})


def main() -> None:
    settings = Settings()
    logs.configure(settings.log_level)
    if settings.use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(run(settings))
            return
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
