"""Bus subscriptions: the catalog's events -> commands -> handlers, each in an idempotent transaction.

The inbox claim and the handler's unit of work share one transaction, so a redelivered event has
no second effect and a crash between them loses nothing. Events that no longer apply (a
reservation for a cancelled order, a second decision) are ignored by the status machine. The
catalog's decisions arrive in bursts during a sale: those waiting together share one
transaction (group commit) and one unit of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import ProductChanged, StockRejected, StockReserved
from flashline_messaging.bus import EventBus
from flashline_messaging.errors import PermanentError
from flashline_messaging.group_commit import GroupCommit
from flashline_messaging.inbox import idempotent
from orders.domain import commands
from orders.domain.errors import OrderNotFound
from orders.service_layer import handlers
from orders.service_layer.unit_of_work import UnitOfWork

JoinedUnitOfWork = Callable[[AsyncSession], UnitOfWork]


def register(
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    unit_of_work: JoinedUnitOfWork,
    *,
    consumer: str,
    payment_window: timedelta,
    max_transactions: int,
) -> None:
    """Subscribe the orders handlers; ``unit_of_work`` builds one joining the inbox's session.

    At most ``max_transactions`` of them hold a database transaction at once (the pool's size):
    the surplus of the prefetch waits here, not on the pool's checkout timeout.
    """
    slots = asyncio.Semaphore(max_transactions)

    async def on_product(event: ProductChanged, envelope: EventEnvelope, session: AsyncSession) -> None:
        cmd = commands.RecordProduct(
            product_id=event.product_id,
            name=event.name,
            price_cents=event.price_cents,
            currency=event.currency,
            changed_at=envelope.occurred_at,
        )
        await handlers.record_product(cmd, unit_of_work(session))

    async def on_reserved(batch: Sequence[tuple[StockReserved, EventEnvelope]], session: AsyncSession) -> None:
        cmds = [commands.ConfirmOrder(event.order_id, payment_window) for event, _ in batch]
        try:
            await handlers.confirm_orders(cmds, unit_of_work(session))
        except OrderNotFound as exc:  # fails the batch; retried alone, it is dead-lettered alone
            raise PermanentError(exc.detail) from exc

    async def on_rejected(batch: Sequence[tuple[StockRejected, EventEnvelope]], session: AsyncSession) -> None:
        cmds = [commands.RejectOrder(event.order_id, event.reason) for event, _ in batch]
        try:
            await handlers.reject_orders(cmds, unit_of_work(session))
        except OrderNotFound as exc:
            raise PermanentError(exc.detail) from exc

    bus.subscribe(ProductChanged, idempotent(sessions, f"{consumer}.catalog-read-model", on_product, slots=slots))
    # Several small batches at once: those sharing rows (an order, a user's or tenant's channel)
    # lock them in one global order (see handlers.confirm_orders), so they queue, never deadlock.
    workers = max(1, max_transactions // 2)
    confirm = GroupCommit(sessions, f"{consumer}.saga", on_reserved, max_batch=8, workers=workers, slots=slots)
    reject = GroupCommit(sessions, f"{consumer}.saga", on_rejected, max_batch=8, workers=workers, slots=slots)
    bus.subscribe(StockReserved, confirm)
    bus.subscribe(StockRejected, reject)
