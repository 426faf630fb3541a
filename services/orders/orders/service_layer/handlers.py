"""Use cases: plain async functions ``handler(cmd, uow)``; entrypoints build the commands.

Every transition is one unit of work (a batch of the catalog's decisions shares one): the order
row is locked, changed, its history appended, and the resulting events and publications written
to the outbox, then committed together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from flashline_contracts.channels import order_channel
from flashline_contracts.publications import StreamPosition
from orders.adapters.repository import KeyClaim
from orders.domain import commands, pricing
from orders.domain.errors import IdempotencyKeyReused, IllegalTransition, OrderNotFound, OrdersError
from orders.domain.model import Order
from orders.domain.values import Actor, Line, Status
from orders.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("orders.handlers")
Decision = TypeVar("Decision", commands.ConfirmOrder, commands.RejectOrder)


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    replayed: bool  # the Idempotency-Key was used before: this is that request's order
    # Where ``order:{id}`` stands after this placement (offset == version); None on a replay.
    stream: StreamPosition | None = None


async def place_order(cmd: commands.PlaceOrder, uow: UnitOfWork) -> Placed:
    """Create a pending order priced from the catalog read model, once per Idempotency-Key.

    The key is claimed first, in the same transaction, and the claim draws the order's id: a
    failure (unknown product, say) rolls the claim back too, so the client may retry with the same
    key once the request can succeed.
    """
    pricing.check_items(cmd.items, cmd.cart_id)
    request_hash = pricing.fingerprint(cmd.items, cmd.cart_id)
    actor = cmd.actor
    async with uow:
        claim = await uow.idempotency.claim(actor.user_id, cmd.idempotency_key, request_hash)
        if claim.earlier:
            if claim.request_hash != request_hash:
                raise IdempotencyKeyReused(cmd.idempotency_key)
            earlier = await uow.orders.get(claim.order_id)
            if earlier is None:
                raise OrderNotFound(claim.order_id)
            return Placed(earlier, replayed=True)
        catalog = await uow.catalog.by_ids(item.product_id for item in cmd.items)
        lines, currency = pricing.price(cmd.items, catalog)
        order = Order.place(
            order_id=claim.order_id,
            actor=actor,
            cart_id=cmd.cart_id,
            lines=lines,
            currency=currency,
            at=uow.clock(),
        )
        await uow.orders.add_many([order])
        await _commit(uow, order, stored=True)
    return Placed(order, replayed=False, stream=uow.published.get(order_channel(order.id)))


async def place_orders(cmds: Sequence[commands.PlaceOrder], uow: UnitOfWork) -> list[Placed | None]:
    """Place concurrent requests' orders in one transaction: a statement each for their products,
    their keys, their rows and their outbox entries, and one commit, however many they are.

    Only the ordinary request is decided here: items ``check_items`` passed and the catalog can
    price, under a key nobody claimed before. Any other gets None, for its caller to place alone
    (``place_order``), which answers it as it answers a single request: the replay of an earlier
    order, a key reused, an unknown product.
    """
    priced: dict[int, tuple[tuple[Line, ...], str]] = {}
    async with uow:
        catalog = await uow.catalog.by_ids({item.product_id for cmd in cmds for item in cmd.items})
        keys: set[tuple[str, str]] = set()
        for i, cmd in enumerate(cmds):
            key = (cmd.actor.user_id, cmd.idempotency_key)
            if key in keys:
                continue  # the same request twice at once: the second replays the first, alone
            try:
                priced[i] = pricing.price(cmd.items, catalog)
            except OrdersError:
                continue
            keys.add(key)
        claims = [
            KeyClaim(
                cmds[i].actor.user_id, cmds[i].idempotency_key, pricing.fingerprint(cmds[i].items, cmds[i].cart_id)
            )
            for i in priced
        ]
        orders: dict[int, Order] = {}
        for (i, (lines, currency)), order_id in zip(
            priced.items(), await uow.idempotency.claim_many(claims), strict=True
        ):
            if order_id is not None:
                cmd = cmds[i]
                orders[i] = Order.place(
                    order_id=order_id,
                    actor=cmd.actor,
                    cart_id=cmd.cart_id,
                    lines=lines,
                    currency=currency,
                    at=uow.clock(),
                )
        if not orders:
            return [None] * len(cmds)
        await uow.orders.add_many(list(orders.values()))
        await _commit(uow, *orders.values(), stored=True)
    return [
        Placed(order, replayed=False, stream=uow.published.get(order_channel(order.id)))
        if (order := orders.get(i)) is not None
        else None
        for i in range(len(cmds))
    ]


async def confirm_orders(cmds: Sequence[commands.ConfirmOrder], uow: UnitOfWork) -> list[Order]:
    """A batch of reservations in one commit (locks: see ``_decide``); returns the orders confirmed
    (not those that moved on already: a duplicate or late event).

    A reservation that arrives after a cancellation is not undone here: the catalog releases it
    on the ``OrderCancelled`` it receives (or has received) for the order.
    """
    return await _decide(uow, "StockReserved", cmds, lambda order, cmd: order.confirm(uow.clock(), cmd.payment_window))


async def reject_orders(cmds: Sequence[commands.RejectOrder], uow: UnitOfWork) -> list[Order]:
    """A batch of rejections in one commit (locks: see ``_decide``); returns the orders rejected."""
    return await _decide(uow, "StockRejected", cmds, lambda order, cmd: order.reject(cmd.reason, uow.clock()))


async def pay_order(cmd: commands.PayOrder, uow: UnitOfWork) -> Order:
    """Mark a confirmed order paid; past its window the order expires now instead (409)."""
    async with uow:
        order = await _visible(uow, cmd.order_id, cmd.actor, lock=True)
        now = uow.clock()
        if order.user_id == cmd.actor.user_id and order.is_overdue(now):
            order.expire(now)
            await _commit(uow, order)
            raise IllegalTransition(
                order.id, order.status, Status.PAID, f"the payment window of order {order.id} closed"
            )
        order.pay(cmd.actor, now)
        await _commit(uow, order)
    return order


async def advance_order(cmd: commands.AdvanceOrder, uow: UnitOfWork) -> Order:
    async with uow:
        order = await _visible(uow, cmd.order_id, cmd.actor, lock=True)
        order.advance(cmd.actor, cmd.status, uow.clock())
        await _commit(uow, order)
    return order


async def cancel_order(cmd: commands.CancelOrder, uow: UnitOfWork) -> Order:
    async with uow:
        order = await _visible(uow, cmd.order_id, cmd.actor, lock=True)
        order.cancel(cmd.actor, uow.clock(), cmd.reason)
        await _commit(uow, order)
    return order


async def expire_overdue(cmd: commands.ExpireOverdueOrders, uow: UnitOfWork) -> list[int]:
    """Expire up to ``batch_size`` overdue orders, one transaction each; returns their ids.

    One order per transaction keeps lock sets small: a payment or a confirmation that needs one
    of these users' channel rows waits for one order's write, not for a whole sweep.
    """
    expired: list[int] = []
    for _ in range(cmd.batch_size):
        async with uow:
            now = uow.clock()
            due = await uow.orders.overdue(now, limit=1)
            if not due:
                break
            order = due[0]
            order.expire(now)
            await _commit(uow, order)
        expired.append(order.id)
    return expired


async def record_product(cmd: commands.RecordProduct, uow: UnitOfWork) -> bool:
    """Follow the catalog's ProductChanged; an event older than what we hold changes nothing."""
    product = pricing.CatalogProduct(cmd.product_id, cmd.name, cmd.price_cents, cmd.currency, cmd.changed_at)
    async with uow:
        kept = await uow.catalog.record(product)
        await uow.commit()
    return kept


async def _decide(
    uow: UnitOfWork, name: str, cmds: Sequence[Decision], apply: Callable[[Order, Decision], None]
) -> list[Order]:
    """Apply the catalog's decisions to their orders in one commit; those that moved on are skipped.

    The orders are all locked up front, by ascending id, and the commit writes the channels by
    name (``OutboxWriter``): one lock order for every transaction of the service, so none waits
    on another in a cycle (locking each order and then its channels in turn could). An unknown
    order fails the whole batch (``OrderNotFound``).
    """
    async with uow:
        found = {order.id: order for order in await uow.orders.get_many([c.order_id for c in cmds], for_update=True)}
        moved: dict[int, Order] = {}
        for cmd in cmds:
            order = found.get(cmd.order_id)
            if order is None:
                raise OrderNotFound(cmd.order_id)
            try:
                apply(order, cmd)
            except IllegalTransition:
                log.info("%s ignored: order %s is %s", name, order.id, order.status)
                continue
            moved[order.id] = order
        await _commit(uow, *moved.values())
    return list(moved.values())


async def _visible(uow: UnitOfWork, order_id: int, actor: Actor, *, lock: bool = False) -> Order:
    """The order if ``actor`` may see it; otherwise not found, so existence is never revealed."""
    order = await uow.orders.get(order_id, for_update=lock)
    if order is None or not order.visible_to(actor):
        raise OrderNotFound(order_id)
    return order


async def _commit(uow: UnitOfWork, *changed: Order, stored: bool = False) -> None:
    """Save the changed orders (unless just added; one statement for all) and commit them with their events."""
    if not stored:
        await uow.orders.save_many(changed)
    for order in changed:
        uow.collect(*order.events)
        order.events.clear()
    await uow.commit()
