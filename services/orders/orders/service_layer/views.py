"""Reads for the API: orders with their channel's stream position (no domain events, no writes)."""

from __future__ import annotations

from dataclasses import dataclass

from flashline_contracts.channels import order_channel, tenant_channel, user_channel
from flashline_contracts.publications import StreamPosition
from orders.domain.errors import NotAllowed, OrderNotFound
from orders.domain.model import Order
from orders.domain.values import Actor
from orders.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    stream: StreamPosition


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[Order]
    stream: StreamPosition  # of the channel whose summaries keep this list current


async def order(uow: UnitOfWork, order_id: int, actor: Actor) -> OrderView:
    """The order and ``order:{id}``'s position; its offset is the order's version by construction."""
    async with uow:
        found = await uow.orders.get(order_id)
        if found is None or not found.visible_to(actor):
            raise OrderNotFound(order_id)
        epoch = (await uow.streams.position(order_channel(order_id))).epoch
    return OrderView(found, StreamPosition(offset=found.version, epoch=epoch))


async def own_orders(uow: UnitOfWork, actor: Actor, *, before: int, limit: int) -> OrderPage:
    """The caller's orders, newest first. The position is read first: the list is at least as new."""
    async with uow:
        stream = await uow.streams.position(user_channel(actor.user_id))
        found = await uow.orders.page(user_id=actor.user_id, before=before, limit=limit)
    return OrderPage(found, stream)


async def tenant_orders(uow: UnitOfWork, actor: Actor, tenant_id: str, *, before: int, limit: int) -> OrderPage:
    """A company's orders for its members (the shared order desk), newest first."""
    check_member(actor, tenant_id)
    async with uow:
        stream = await uow.streams.position(tenant_channel(tenant_id))
        found = await uow.orders.page(tenant_id=tenant_id, before=before, limit=limit)
    return OrderPage(found, stream)


def check_member(actor: Actor, tenant_id: str) -> None:
    if actor.tenant_id != tenant_id:
        raise NotAllowed(f"only members of tenant {tenant_id} may see its orders")
