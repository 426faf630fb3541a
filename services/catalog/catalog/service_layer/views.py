"""Reads for the API: products with their stock channel's position (no domain events, no writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from catalog.domain.errors import ProductNotFound
from catalog.domain.model import Product
from catalog.service_layer.unit_of_work import UnitOfWork


async def product(uow: UnitOfWork, product_id: int) -> Product:
    async with uow:
        found = await uow.products.get(product_id)
    if found is None:
        raise ProductNotFound(product_id)
    return found


async def products_by_ids(uow: UnitOfWork, ids: Sequence[int]) -> list[Product]:
    """The products found, in the order asked for; unknown ids are left out."""
    async with uow:
        found = {p.id: p for p in await uow.products.by_ids(ids)}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


async def page(uow: UnitOfWork, *, after: int, limit: int) -> list[Product]:
    async with uow:
        return await uow.products.page(after=after, limit=limit)


async def next_sale_start(uow: UnitOfWork) -> datetime | None:
    async with uow:
        return await uow.products.next_sale_start()
