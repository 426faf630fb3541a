"""``python -m push_gateway``: run one gateway pod until SIGTERM/SIGINT, then drain and exit."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from push_gateway import logs
from push_gateway.bootstrap import Gateway
from push_gateway.settings import Settings

log = logging.getLogger("push_gateway")

# At the default young threshold (700) a connect storm runs the collector every few connects, and
# its older generations re-scan every live connection and all of startup's objects: measured, 0.1 s
# of a 5,000-connect storm (20 us per connect). With 10,000 and startup frozen: about 4 us.
# Cyclic garbage (closed connections) just waits a little longer.
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Leave startup's objects (modules, settings, key set) out of every collection; collect young ones less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def run(settings: Settings) -> None:
    gateway = Gateway(settings)
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    logs.attach(loop)
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
    logs.detach()


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
