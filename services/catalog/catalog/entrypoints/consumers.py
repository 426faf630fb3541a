"""Bus subscriptions: orders' events -> commands -> handlers, each in an idempotent transaction.

The inbox claim and the handler's unit of work share one transaction, so a redelivered event has
no second effect and a crash between them loses nothing. Orders placed together are reserved
together (group commit): one transaction for every ``OrderPlaced`` waiting when it starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.domain import commands
from catalog.domain.values import Line
from catalog.service_layer import handlers
from catalog.service_layer.unit_of_work import UnitOfWork
from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderCancelled, OrderExpired, OrderPlaced
from flashline_messaging.bus import EventBus
from flashline_messaging.errors import PermanentError
from flashline_messaging.group_commit import GroupCommit
from flashline_messaging.inbox import idempotent

JoinedUnitOfWork = Callable[[AsyncSession], UnitOfWork]


def register(
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    unit_of_work: JoinedUnitOfWork,
    *,
    consumer: str,
    max_transactions: int,
) -> None:
    """Subscribe the catalog's handlers; ``unit_of_work`` builds one joining the inbox's session.

    At most ``max_transactions`` of them hold a database transaction at once (the pool's size):
    the prefetch may exceed it, the surplus waits here rather than on the pool's checkout timeout,
    and the pool's overflow stays free for the API and the relay.
    """
    slots = asyncio.Semaphore(max_transactions)

    async def on_placed(placed: Sequence[tuple[OrderPlaced, EventEnvelope]], session: AsyncSession) -> None:
        cmds = []
        for event, _ in placed:
            if not event.lines:  # fails its batch: retried alone, it is dead-lettered alone
                raise PermanentError(f"order {event.order_id} has no lines")
            lines = tuple(Line(line.product_id, line.quantity) for line in event.lines)
            cmds.append(commands.ReserveOrder(event.order_id, lines))
        await handlers.reserve_orders(cmds, unit_of_work(session))

    async def on_cancelled(event: OrderCancelled, envelope: EventEnvelope, session: AsyncSession) -> None:
        await handlers.release_order(commands.ReleaseOrder(event.order_id), unit_of_work(session))

    async def on_expired(event: OrderExpired, envelope: EventEnvelope, session: AsyncSession) -> None:
        await handlers.release_order(commands.ReleaseOrder(event.order_id), unit_of_work(session))

    bus.subscribe(OrderPlaced, GroupCommit(sessions, f"{consumer}.reserve", on_placed, slots=slots))
    bus.subscribe(OrderCancelled, idempotent(sessions, f"{consumer}.release", on_cancelled, slots=slots))
    bus.subscribe(OrderExpired, idempotent(sessions, f"{consumer}.release", on_expired, slots=slots))
