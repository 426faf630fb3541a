"""Transactions that lock the same rows on real Postgres: batches of the catalog's decisions and cancels.

Each test stops a batch right after its outbox write (its order and channel rows locked, nothing
committed), starts a transaction that needs some of those rows, checks that it waits, then lets
the batch finish: both must commit. They did not while a batch locked an order, its channels,
then the next order: each crossing here was a deadlock, which Postgres broke by failing one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flashline_service.database import Database
from flashline_service.testing import Pause
from orders.domain import commands
from orders.domain.events import DomainEvent
from orders.domain.values import Actor, Item, Status
from orders.service_layer import handlers
from orders.service_layer.integration import OutboxWriter
from orders.service_layer.unit_of_work import SqlUnitOfWork

from ..support import unique, unit_of_work

WINDOW = timedelta(minutes=5)


class PausedUnitOfWork(SqlUnitOfWork):
    """Holds its transaction at ``pause`` right after its first outbox write."""

    def __init__(self, pause: Pause, **where: Any) -> None:
        super().__init__(OutboxWriter("orders"), lambda: datetime.now(UTC), **where)
        self._pause = pause

    async def _write(self, session: AsyncSession, changes: list[DomainEvent]) -> None:
        await super()._write(session, changes)
        await self._pause.hold()


async def pending(db: Database, product: int, user: str) -> int:
    placed = await handlers.place_order(
        commands.PlaceOrder(Actor(user), unique("k"), (Item(product, 1),)), unit_of_work(db)
    )
    return placed.order.id


async def confirm_batch(db: Database, order_ids: list[int], pause: Pause | None = None) -> list[int]:
    """Confirm ``order_ids`` as the consumer does: one unit of work joined to the batch's transaction."""
    async with db.sessions() as session, session.begin():
        if pause is None:
            uow = SqlUnitOfWork(OutboxWriter("orders"), lambda: datetime.now(UTC), session=session)
        else:
            uow = PausedUnitOfWork(pause, session=session)
        confirmed = await handlers.confirm_orders([commands.ConfirmOrder(i, WINDOW) for i in order_ids], uow)
    return [order.id for order in confirmed]


async def offsets(db: Database, *channels: str) -> list[int]:
    async with unit_of_work(db) as uow:
        return [(await uow.streams.position(channel)).offset for channel in channels]


async def test_two_batches_with_the_same_two_users_in_opposite_orders_both_commit(db: Database, product: int) -> None:
    ann, bob = unique("ann"), unique("bob")
    first_ann, first_bob = await pending(db, product, ann), await pending(db, product, bob)
    second_bob, second_ann = await pending(db, product, bob), await pending(db, product, ann)
    pause = Pause()
    first = asyncio.create_task(confirm_batch(db, [first_ann, first_bob], pause))
    await pause.reached.wait()

    second = asyncio.create_task(confirm_batch(db, [second_bob, second_ann]))
    await pause.waits_then_release(second, "the second batch must wait for the users' channels the first holds")

    assert await first == [first_ann, first_bob]
    assert await second == [second_bob, second_ann]
    assert await offsets(db, f"user#{ann}", f"user#{bob}") == [4, 4]  # two placements, two confirmations each


async def test_a_cancel_of_an_order_in_a_batch_that_holds_its_users_channel_commits_after_it(
    db: Database, product: int
) -> None:
    user = unique("cid")
    first, second = await pending(db, product, user), await pending(db, product, user)
    pause = Pause()
    batch = asyncio.create_task(confirm_batch(db, [first, second], pause))
    await pause.reached.wait()

    cancel = asyncio.create_task(handlers.cancel_order(commands.CancelOrder(Actor(user), second), unit_of_work(db)))
    await pause.waits_then_release(cancel, "the cancel must wait for the batch that holds its order")

    assert await batch == [first, second]
    cancelled = await cancel
    assert (cancelled.status, cancelled.version) == (Status.CANCELLED, 3)  # after the confirmation
    assert await offsets(db, f"order:{second}", f"user#{user}") == [3, 5]
