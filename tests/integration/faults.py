"""Faults injected into a running system: a broker outage for one vhost, crashed processes.

The broker is shared by every run on this machine, so an outage is never a stopped RabbitMQ: the
vhost's connection limit drops to zero and its connections are closed, which is what the services
and gateways see when the broker goes away (their reconnects are refused until it "comes back").
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .conftest import Stack


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "--quiet", *args], check=True, capture_output=True, timeout=60)


def cut_broker(vhost: str) -> None:
    """Refuse new connections to ``vhost`` and close the open ones."""
    _rabbitmqctl("set_vhost_limits", "-p", vhost, json.dumps({"max-connections": 0}))
    _rabbitmqctl("close_all_connections", "--vhost", vhost, "fault test: broker outage")


def restore_broker(vhost: str) -> None:
    _rabbitmqctl("clear_vhost_limits", "-p", vhost)


@asynccontextmanager
async def broker_outage(stack: Stack) -> AsyncIterator[None]:
    """The stack's broker is unreachable inside the block and back after it (even if the block fails)."""
    await asyncio.to_thread(cut_broker, stack.config.vhost)
    try:
        yield
    finally:
        await asyncio.to_thread(restore_broker, stack.config.vhost)


async def crash(stack: Stack, name: str, *, down_for: float = 0.0) -> None:
    """SIGKILL ``name`` (a service or ``stack.gateway(i)``), keep it down ``down_for`` s, start it again."""
    await asyncio.to_thread(stack.kill, name)
    await asyncio.sleep(down_for)
    await asyncio.to_thread(stack.restart, name)
