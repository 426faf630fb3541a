"""Use cases: plain async functions ``handler(cmd, uow)``; entrypoints build the commands."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from catalog.domain import commands, events, model
from catalog.domain.errors import ProductNotFound
from catalog.domain.model import Product, StockLevel
from catalog.domain.values import Line
from catalog.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("catalog.handlers")

Decision = events.OrderReserved | events.OrderRejected


async def create_product(cmd: commands.CreateProduct, uow: UnitOfWork) -> Product:
    async with uow:
        new = model.NewProduct.create(
            sku=cmd.sku,
            name=cmd.name,
            price_cents=cmd.price_cents,
            currency=cmd.currency,
            stock=cmd.stock,
            sale_starts_at=cmd.sale_starts_at,
            now=uow.clock(),
        )
        product = await uow.products.add(new)
        uow.collect(*product.creation_events())
        await uow.commit()
    return product


async def update_product(cmd: commands.UpdateProduct, uow: UnitOfWork) -> Product:
    async with uow:
        product = await uow.products.get(cmd.product_id, for_update=True)
        if product is None:
            raise ProductNotFound(cmd.product_id)
        revised, changes = product.revise(
            name=cmd.name,
            price_cents=cmd.price_cents,
            sale_starts_at=cmd.sale_starts_at if cmd.change_sale_start else product.sale_starts_at,
            now=uow.clock(),
        )
        if changes:
            await uow.products.save(revised)
            uow.collect(*changes)
            await uow.commit()
    return revised


async def restock(cmd: commands.Restock, uow: UnitOfWork) -> StockLevel:
    quantity = model.check_quantity(cmd.quantity)
    async with uow:
        level = await uow.products.replenish(cmd.product_id, quantity)
        if level is None:
            raise ProductNotFound(cmd.product_id)
        uow.collect(level.changed())
        await uow.commit()
    return level


async def reserve_orders(cmds: Sequence[commands.ReserveOrder], uow: UnitOfWork) -> list[Decision]:
    """Reserve a batch of orders in one transaction; the decisions, in the batch's order.

    Orders decided (or released) before are skipped. Each of the others gets every line or none
    (``model.allocate``, first come first served) on product rows locked in id order, so two
    batches sharing products never deadlock. Everything is written with a few statements per
    batch, not per order: a hot product's row lock is held for one batch's round trips, and a
    sale's throughput grows with the batch instead of being one commit per unit.
    """
    async with uow:
        claimed = await uow.reservations.claim_orders([cmd.order_id for cmd in cmds])
        fresh = []
        for cmd in cmds:
            if cmd.order_id in claimed:
                claimed.discard(cmd.order_id)  # an order twice in one batch: the first only
                fresh.append(cmd)
        if len(fresh) < len(cmds):
            log.info("%d order(s) already decided or released; OrderPlaced ignored", len(cmds) - len(fresh))
        if not fresh:
            return []
        wanted = [line.product_id for cmd in fresh for line in cmd.lines if 0 < line.product_id <= model.MAX_ID]
        levels = await uow.products.lock_levels(wanted)
        allocation = model.allocate(((cmd.order_id, cmd.lines) for cmd in fresh), levels, now=uow.clock())
        await uow.products.set_levels(allocation.levels)
        reserved = [d for d in allocation.decisions if isinstance(d, events.OrderReserved)]
        await uow.reservations.add([(d.order_id, d.lines) for d in reserved])
        await uow.reservations.reject_orders(
            [d.order_id for d in allocation.decisions if isinstance(d, events.OrderRejected)]
        )
        uow.collect(*(level.changed() for level in allocation.levels), *allocation.decisions)
        await uow.commit()
    return list(allocation.decisions)


async def release_order(cmd: commands.ReleaseOrder, uow: UnitOfWork) -> tuple[Line, ...]:
    """Put a cancelled or expired order's units back; a no-op for unknown or released orders.

    Commits even when nothing was reserved: the tombstone it leaves turns a late OrderPlaced away.
    """
    async with uow:
        lines = await uow.reservations.release_order(cmd.order_id)
        for line in lines:
            level = await uow.products.replenish(line.product_id, line.quantity)
            if level is None:
                raise ProductNotFound(line.product_id)
            uow.collect(level.changed())
        if lines:
            uow.collect(events.OrderReleased(cmd.order_id, lines))
        await uow.commit()
    return lines


async def announce_due_sales(cmd: commands.AnnounceDueSales, uow: UnitOfWork) -> list[StockLevel]:
    """Publish the on-sale state of every product whose sale has started and was not announced."""
    async with uow:
        levels = await uow.products.announce_due(uow.clock(), cmd.limit)
        if levels:
            uow.collect(*(level.changed() for level in levels))
            await uow.commit()
    return levels
