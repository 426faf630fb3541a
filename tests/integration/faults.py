"""Faults injected into a running system: a broker outage for one vhost, crashed processes.

The broker is shared by every run on this machine, so an outage is never a stopped RabbitMQ: the
vhost's connection limit drops to zero and its connections are closed, which is what the services
and gateways see when the broker goes away (their reconnects are refused until it "comes back").
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from flashline_devstack.stack import SERVICES, consuming

from .conftest import Stack


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "--quiet", *args], check=True, capture_output=True, timeout=60)


def cut_broker(vhost: str) -> None:
    """Refuse new connections to ``vhost`` and close the open ones."""
    _rabbitmqctl("set_vhost_limits", "-p", vhost, json.dumps({"max-connections": 0}))
    _rabbitmqctl("close_all_connections", "--vhost", vhost, "fault test: broker outage")


def restore_broker(vhost: str) -> None:
    """Accept connections to ``vhost`` again; a no-op when it has no limits (clear_vhost_limits fails then)."""
    try:
        _rabbitmqctl("clear_vhost_limits", "-p", vhost)
    except subprocess.CalledProcessError as exc:
        if b"does not exist" not in (exc.stdout or b"") + (exc.stderr or b""):
            raise


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


def down(stack: Stack) -> list[str]:
    """The processes of ``stack`` that are not running."""
    return [name for name, proc in stack.group.procs.items() if proc.popen is None or proc.popen.poll() is not None]


async def make_whole(stack: Stack, *, ready_within: float = 30.0) -> list[str]:
    """Open the broker again and get every process running and ready: a fault test's ``finally``.

    Restarts what is down, then what stays unready (e.g. never got its broker connection back)
    for ``ready_within`` seconds. Returns the names it had to (re)start.
    """
    await asyncio.to_thread(restore_broker, stack.config.vhost)
    repaired = down(stack)
    for name in repaired:
        await asyncio.to_thread(stack.restart, name)
    deadline = time.monotonic() + ready_within
    stuck = await unready(stack)
    while stuck and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        stuck = await unready(stack)
    for name in stuck:
        print(f"--- {name} not ready {ready_within:.0f} s after the fault; restarting it. Its last lines:")
        print("\n".join(stack.logs(name)[-40:]))
        await asyncio.to_thread(stack.kill, name)
        await asyncio.to_thread(stack.restart, name)
    return repaired + stuck


async def unready(stack: Stack) -> list[str]:
    """The processes whose readiness endpoint does not say ready (a service: also consuming)."""
    checks = {svc: f"{stack.url(svc)}/readyz" for svc in SERVICES}
    checks |= {stack.gateway(i): f"http://127.0.0.1:{port}/readyz" for i, port in enumerate(stack.config.gateway_ports)}
    found = []
    async with httpx.AsyncClient(timeout=2) as http:
        for name, url in checks.items():
            try:
                response = await http.get(url)
                ok = response.status_code == 200 and (name not in SERVICES or consuming(response.content))
            except httpx.HTTPError:
                ok = False
            if not ok:
                found.append(name)
    return found


async def query(stack: Stack, service: str, sql: str, *args: object) -> list[Any]:
    """Rows of ``sql`` run against ``service``'s own database (tests look; services never do)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(stack.config.database_url(service)).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def outbox_rows(stack: Stack, service: str) -> int:
    """How many rows wait in ``service``'s outbox."""
    return int((await query(stack, service, "SELECT count(*) AS n FROM outbox"))[0]["n"])


# --- Poison, duplicate and reordered deliveries: raw messages on the stack's events exchange. ---


async def publish_raw(amqp_url: str, messages: list[tuple[str, bytes, str]]) -> None:
    """Publish ``(routing_key, body, message_id)`` onto the events exchange, in order, with confirms.

    ``mandatory``: a message no queue is bound for fails here instead of vanishing unnoticed.
    """
    import aio_pika

    from flashline_contracts.topology import EVENTS_EXCHANGE

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        for routing_key, body, message_id in messages:
            message = aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key=routing_key, mandatory=True)
    finally:
        await connection.close()


async def republish(amqp_url: str, envelopes: list[dict[str, Any]]) -> None:
    """Put captured integration events (parsed envelopes) back on the bus, in the order given, each
    under the routing key its producer would use (``EventEnvelope.topic``)."""
    import orjson

    from flashline_contracts.envelope import EventEnvelope

    await publish_raw(
        amqp_url,
        [(EventEnvelope.model_validate(e).topic, orjson.dumps(e), str(e["event_id"])) for e in envelopes],
    )


@dataclass
class DeadLetter:
    queue: str
    message_id: str
    body: bytes
    headers: dict[str, Any]


async def take_dead_letters(
    amqp_url: str, services: list[str], message_ids: set[str], *, timeout: float = 15.0
) -> list[DeadLetter]:
    """Wait until every message in ``message_ids`` sits in one of the services' dead-letter queues.

    Takes (acknowledges) only those messages: anything else in a dead-letter queue is returned to
    it untouched, so tests that share the stack do not steal each other's poison.
    """
    import aio_pika

    from flashline_contracts.topology import dead_letter_queue

    found: list[DeadLetter] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    connection = await aio_pika.connect(amqp_url)
    try:
        while True:
            channel = await connection.channel()
            others = []
            for service in services:
                queue = await channel.get_queue(dead_letter_queue(service), ensure=False)
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    if (message.message_id or "") in message_ids:
                        found.append(
                            DeadLetter(queue.name, message.message_id or "", message.body, dict(message.headers))
                        )
                        await message.ack()
                    else:
                        others.append(message)
            for message in others:
                await message.nack(requeue=True)
            await channel.close()
            if {d.message_id for d in found} >= message_ids or loop.time() > deadline:
                return found
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
