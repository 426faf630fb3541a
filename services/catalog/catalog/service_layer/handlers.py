"""Use cases: plain async functions ``handler(cmd, uow)``; entrypoints build the commands."""

from __future__ import annotations

import contextlib
import logging

from catalog.domain import commands, events, model
from catalog.domain.errors import ProductNotFound
from catalog.domain.model import Product, StockLevel
from catalog.domain.values import Line, Shortage
from catalog.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("catalog.handlers")

Decision = events.OrderReserved | events.OrderRejected


class _LineShort(Exception):
    """Unwinds the reservation savepoint when one line cannot be taken."""

    def __init__(self, product_id: int) -> None:
        super().__init__(product_id)
        self.product_id = product_id


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


async def reserve_order(cmd: commands.ReserveOrder, uow: UnitOfWork) -> Decision | None:
    """Reserve every line or none; None if the order was decided (or released) before.

    Lines are taken in product-id order with conditional updates inside a savepoint: the first
    line that cannot be taken undoes the ones before it. A single line needs no savepoint (its
    failed update changed nothing), which keeps the hot path of a drop two statements shorter.

    Everything that does not need a product row (order claim, reservation rows) is written
    before the first conditional update: from there on the product row stays locked until
    commit, so only the stock publication and the outbox rows (one statement) and COMMIT remain.
    A rejection drops the reservation rows again.
    """
    lines = model.merge_lines(cmd.lines)
    async with uow:
        if not await uow.reservations.claim_order(cmd.order_id):
            log.info("order %s already decided or released; OrderPlaced ignored", cmd.order_id)
            return None
        impossible = model.impossible_lines(lines)
        if impossible:
            return await _reject(uow, cmd.order_id, impossible)
        now = uow.clock()
        await uow.reservations.add(cmd.order_id, lines)
        levels: list[StockLevel] = []
        try:
            async with uow.savepoint() if len(lines) > 1 else contextlib.nullcontext():
                for line in lines:
                    level = await uow.products.reserve(line.product_id, line.quantity, now)
                    if level is None:
                        raise _LineShort(line.product_id)
                    levels.append(level)
        except _LineShort as short:
            seen = await uow.products.levels([line.product_id for line in lines])
            shortages = model.explain_rejection(lines, seen, now=now, failed=short.product_id)
            return await _reject(uow, cmd.order_id, shortages)
        reserved = events.OrderReserved(cmd.order_id, lines)
        uow.collect(*(level.changed() for level in levels), reserved)
        await uow.commit()
    return reserved


async def _reject(uow: UnitOfWork, order_id: int, shortages: tuple[Shortage, ...]) -> events.OrderRejected:
    await uow.reservations.reject_order(order_id)
    rejected = events.OrderRejected(order_id, model.rejection_reason(shortages), shortages)
    uow.collect(rejected)
    await uow.commit()
    return rejected


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
