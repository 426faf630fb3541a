"""Repositories: the ports the service layer uses, and their SQL adapters (Core, no ORM objects).

Concurrency is decided by Postgres row locks: a batch of reservations locks its products' rows
(``lock_levels``), the domain decides on them, and ``set_levels`` writes the outcome; restocks
and releases are single statements that bump the stock version with the units.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.adapters.tables import order_outcomes, products, reservations
from catalog.domain.errors import DuplicateSku
from catalog.domain.model import NewProduct, Product, StockLevel
from catalog.domain.values import Line
from flashline_contracts.channels import STOCK
from flashline_messaging.schema import channel_streams


class ProductRepository(Protocol):
    async def add(self, new: NewProduct) -> Product:
        """Store a new product at stock version 1; raises DuplicateSku."""

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None: ...

    async def by_ids(self, ids: Sequence[int]) -> list[Product]:
        """The products found, in id order."""

    async def page(self, *, after: int, limit: int) -> list[Product]:
        """Up to ``limit`` products with an id above ``after``, in id order."""

    async def save(self, product: Product) -> None:
        """Write details, sale start and version of a product read ``for_update``."""

    async def lock_levels(self, ids: Sequence[int]) -> dict[int, StockLevel]:
        """The levels of the products found, their rows locked until commit (taken in id order)."""

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        """Write new availability and version of products locked by ``lock_levels``."""

    async def replenish(self, product_id: int, quantity: int) -> StockLevel | None:
        """Put units back (restock, release); None if there is no such product."""

    async def levels(self, ids: Sequence[int]) -> dict[int, StockLevel]: ...

    async def announce_due(self, now: datetime, limit: int) -> list[StockLevel]:
        """Mark due, unannounced sales announced (one replica wins each) and bump their versions."""

    async def next_sale_start(self) -> datetime | None:
        """The earliest sale start not announced yet."""


class ReservationRepository(Protocol):
    async def claim_orders(self, order_ids: Sequence[int]) -> set[int]:
        """Record the orders as reserved; those that were decided (or released) before are not in
        the returned set."""

    async def reject_orders(self, order_ids: Sequence[int]) -> None:
        """Record claimed orders as rejected."""

    async def add(self, reserved: Sequence[tuple[int, Sequence[Line]]]) -> None:
        """Write the reservation rows of claimed orders, ``(order_id, lines)`` each."""

    async def release_order(self, order_id: int) -> tuple[Line, ...]:
        """Release the order's reserved lines (in product-id order); leaves a tombstone if unknown."""

    async def reserved(self, order_id: int) -> tuple[Line, ...]: ...


_PRODUCT = (
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.price_cents,
    products.c.currency,
    products.c.available,
    products.c.version,
    products.c.sale_starts_at,
    products.c.sale_announced,
)
_LEVEL = (products.c.id, products.c.available, products.c.version, products.c.sale_starts_at)


def _with_stream() -> sa.Select[Any]:
    """Products with the epoch of their stock channel (one statement: a consistent pair)."""
    channel = sa.literal(f"{STOCK}:") + sa.cast(products.c.id, sa.Text)
    joined = products.outerjoin(channel_streams, channel_streams.c.channel == channel)
    return sa.select(*_PRODUCT, channel_streams.c.epoch).select_from(joined)


def _product(row: Any, epoch: str | None = None) -> Product:
    fields: dict[str, Any] = {column.name: value for column, value in zip(_PRODUCT, row, strict=False)}
    return Product(**fields, stream_epoch=epoch or "")


def _level(row: Any) -> StockLevel:
    return StockLevel(*row)


class SqlProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, new: NewProduct) -> Product:
        stmt = (
            pg_insert(products)
            .values(
                sku=new.sku,
                name=new.name,
                price_cents=new.price_cents,
                currency=new.currency,
                available=new.available,
                version=1,
                sale_starts_at=new.sale_starts_at,
                sale_announced=new.sale_announced,
            )
            .on_conflict_do_nothing(index_elements=[products.c.sku])
            .returning(*_PRODUCT)
        )
        row = (await self._session.execute(stmt)).one_or_none()
        if row is None:
            raise DuplicateSku(new.sku)
        return _product(row)

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None:
        query = _with_stream().where(products.c.id == product_id)
        if for_update:
            query = query.with_for_update(of=products)
        row = (await self._session.execute(query)).one_or_none()
        return None if row is None else _product(row, row.epoch)

    async def by_ids(self, ids: Sequence[int]) -> list[Product]:
        query = _with_stream().where(products.c.id.in_(list(ids))).order_by(products.c.id)
        return [_product(row, row.epoch) for row in await self._session.execute(query)]

    async def page(self, *, after: int, limit: int) -> list[Product]:
        query = _with_stream().where(products.c.id > after).order_by(products.c.id).limit(limit)
        return [_product(row, row.epoch) for row in await self._session.execute(query)]

    async def save(self, product: Product) -> None:
        await self._session.execute(
            sa.update(products)
            .where(products.c.id == product.id)
            .values(
                name=product.name,
                price_cents=product.price_cents,
                sale_starts_at=product.sale_starts_at,
                sale_announced=product.sale_announced,
                version=product.version,
                updated_at=sa.func.now(),
            )
        )

    async def lock_levels(self, ids: Sequence[int]) -> dict[int, StockLevel]:
        query = sa.select(*_LEVEL).where(products.c.id.in_(sorted(set(ids)))).order_by(products.c.id).with_for_update()
        return {row.id: _level(row) for row in await self._session.execute(query)}

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        if levels:
            await self._session.execute(
                _SET_LEVELS,
                {
                    "ids": [level.product_id for level in levels],
                    "available": [level.available for level in levels],
                    "versions": [level.version for level in levels],
                },
            )

    async def replenish(self, product_id: int, quantity: int) -> StockLevel | None:
        stmt = (
            sa.update(products)
            .where(products.c.id == product_id)
            .values(available=products.c.available + quantity, version=products.c.version + 1, updated_at=sa.func.now())
            .returning(*_LEVEL)
        )
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else _level(row)

    async def levels(self, ids: Sequence[int]) -> dict[int, StockLevel]:
        rows = await self._session.execute(sa.select(*_LEVEL).where(products.c.id.in_(list(ids))))
        return {row.id: _level(row) for row in rows}

    async def announce_due(self, now: datetime, limit: int) -> list[StockLevel]:
        # SKIP LOCKED: a replica busy announcing a product hides it from the others; once it
        # commits, the re-checked row is announced and no longer matches.
        due = (
            sa.select(products.c.id)
            .where(products.c.sale_announced.is_(False), products.c.sale_starts_at <= now)
            .order_by(products.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            sa.update(products)
            .where(products.c.id.in_(due.scalar_subquery()))
            .values(sale_announced=True, version=products.c.version + 1, updated_at=sa.func.now())
            .returning(*_LEVEL)
        )
        return sorted((_level(row) for row in await self._session.execute(stmt)), key=lambda level: level.product_id)

    async def next_sale_start(self) -> datetime | None:
        query = sa.select(sa.func.min(products.c.sale_starts_at)).where(
            products.c.sale_announced.is_(False), products.c.sale_starts_at.is_not(None)
        )
        return (await self._session.execute(query)).scalar_one()


_SET_LEVELS = sa.text(
    """
    UPDATE products p SET available = n.available, version = n.version, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:available AS bigint[]), CAST(:versions AS bigint[]))
         AS n(id, available, version)
    WHERE p.id = n.id
    """
)

_ADD_RESERVATIONS = sa.text(
    """
    INSERT INTO reservations (order_id, product_id, quantity, state)
    SELECT l.order_id, l.product_id, l.quantity, 'reserved'
    FROM unnest(CAST(:order_ids AS bigint[]), CAST(:product_ids AS bigint[]), CAST(:quantities AS bigint[]))
         AS l(order_id, product_id, quantity)
    """
)


class SqlReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_orders(self, order_ids: Sequence[int]) -> set[int]:
        # A concurrent claim or release of the same order waits on the key, then finds it taken.
        stmt = (
            pg_insert(order_outcomes)
            .values([{"order_id": order_id, "state": "reserved"} for order_id in order_ids])
            .on_conflict_do_nothing(index_elements=[order_outcomes.c.order_id])
            .returning(order_outcomes.c.order_id)
        )
        return set((await self._session.execute(stmt)).scalars())

    async def reject_orders(self, order_ids: Sequence[int]) -> None:
        if order_ids:
            await self._session.execute(
                sa.update(order_outcomes).where(order_outcomes.c.order_id.in_(list(order_ids))).values(state="rejected")
            )

    async def add(self, reserved: Sequence[tuple[int, Sequence[Line]]]) -> None:
        rows = [(order_id, line) for order_id, lines in reserved for line in lines]
        if rows:
            await self._session.execute(
                _ADD_RESERVATIONS,
                {
                    "order_ids": [order_id for order_id, _ in rows],
                    "product_ids": [line.product_id for _, line in rows],
                    "quantities": [line.quantity for _, line in rows],
                },
            )

    async def release_order(self, order_id: int) -> tuple[Line, ...]:
        # The outcome row first: it serializes with an in-flight claim of the same order, so the
        # reservation rows read next are those that claim committed (read committed, new snapshot).
        upsert = pg_insert(order_outcomes).values(order_id=order_id, state="released")
        await self._session.execute(
            upsert.on_conflict_do_update(
                index_elements=[order_outcomes.c.order_id],
                set_={"state": "released", "decided_at": sa.func.now()},
                where=order_outcomes.c.state == "reserved",
            )
        )
        rows = await self._session.execute(
            sa.update(reservations)
            .where(reservations.c.order_id == order_id, reservations.c.state == "reserved")
            .values(state="released", released_at=sa.func.now())
            .returning(reservations.c.product_id, reservations.c.quantity)
        )
        return tuple(sorted((Line(*row) for row in rows), key=lambda line: line.product_id))

    async def reserved(self, order_id: int) -> tuple[Line, ...]:
        rows = await self._session.execute(
            sa.select(reservations.c.product_id, reservations.c.quantity)
            .where(reservations.c.order_id == order_id, reservations.c.state == "reserved")
            .order_by(reservations.c.product_id)
        )
        return tuple(Line(*row) for row in rows)
