"""Repositories: the ports the service layer uses, and their SQL adapters (Core, no ORM objects).

Writers lock the cart row (``SELECT ... FOR UPDATE``) before anything else, so two writers of
one cart serialize and each change takes its own version. Several carts are always locked in
id order, so writers that share carts can never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cart.adapters.tables import cart_items, carts, products, stock_levels
from cart.domain.model import Cart, Listing, Offer, PricedCart, StockLevel
from flashline_contracts.channels import CART, cart_channel
from flashline_messaging.schema import channel_streams


class CartRepository(Protocol):
    async def add(self, cart: Cart) -> bool:
        """Store a new, empty cart; False (nothing stored) if its owner already has an open cart."""

    async def get(self, cart_id: str, *, for_update: bool = False) -> Cart | None: ...

    async def open_cart_of(self, owner_id: str, *, for_update: bool = False) -> Cart | None: ...

    async def lock(self, cart_ids: Sequence[str]) -> dict[str, Cart]:
        """Lock the carts found, in id order."""

    async def lock_misflagged(self, product_id: int, limit: int) -> list[Cart]:
        """Lock (in id order) up to ``limit`` open carts holding ``product_id`` whose tabs were shown a
        ``short`` flag for it that its stored stock level makes wrong."""

    async def lock_mispriced(self, product_id: int, limit: int) -> list[Cart]:
        """Lock (in id order) up to ``limit`` open carts holding ``product_id`` whose tabs were shown
        another name or unit price for it than its stored listing."""

    async def save(self, cart: Cart, shown: PricedCart) -> None:
        """Write a cart read for update, with the short flags of ``shown`` (what its tabs now see)."""

    async def delete_idle_guest_carts(self, idle_since: datetime, limit: int) -> list[str]:
        """Delete up to ``limit`` guest carts (open or closed) unchanged since ``idle_since``, oldest
        first, with their lines and their channel's stream position; returns their ids (in no
        particular order). A cart a writer holds is skipped: it is not idle."""


class CatalogRepository(Protocol):
    async def record_listing(self, listing: Listing, changed_at: datetime) -> bool:
        """Store the listing unless a newer one is stored; True if stored.

        Like ``record_stock``, waits for the transactions holding the product (``hold_products``)
        to end, and makes them wait for this one."""

    async def record_stock(self, level: StockLevel) -> bool:
        """Store the level if its version is newer than the stored one; True if stored.

        Waits for the transactions holding the product (``hold_products``) to end, and makes them
        wait for this one."""

    async def hold_products(self, product_ids: Sequence[int]) -> None:
        """Keep these products' listings and stock levels from changing until this transaction ends.

        A transaction that stores what tabs are shown (name, price, ``short``) holds them: a change
        committed meanwhile would look for outdated carts before these are visible and miss them."""

    async def offers(self, product_ids: Sequence[int]) -> dict[int, Offer]:
        """Offers of the listed products among ``product_ids`` (availability 0 until known)."""


def _product_lock(product_id: Any) -> tuple[Any, ...]:
    """The advisory lock key of a product's listing and stock: (class, the id hashed to an int).

    Two products may share a key; that only makes one wait for the other, never skips a wait."""
    return (0x5_70C, sa.func.hashint8(product_id))


_CART = (carts.c.id, carts.c.owner_id, carts.c.token_hash, carts.c.status, carts.c.version)


def _carts() -> sa.Select[Any]:
    """Carts with their channel's epoch (one statement: a consistent pair)."""
    channel = sa.literal(f"{CART}:") + carts.c.id
    joined = carts.outerjoin(channel_streams, channel_streams.c.channel == channel)
    return sa.select(*_CART, channel_streams.c.epoch).select_from(joined)


class SqlCartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, cart: Cart) -> bool:
        stmt = (
            pg_insert(carts)
            .values(id=cart.id, owner_id=cart.owner_id, token_hash=cart.token_hash, status=cart.status, version=0)
            .on_conflict_do_nothing(
                index_elements=[carts.c.owner_id], index_where=sa.text("status = 'open' AND owner_id IS NOT NULL")
            )
            .returning(carts.c.id)
        )
        return (await self._session.execute(stmt)).one_or_none() is not None

    async def get(self, cart_id: str, *, for_update: bool = False) -> Cart | None:
        found = await self._load(_carts().where(carts.c.id == cart_id), for_update=for_update)
        return found[0] if found else None

    async def open_cart_of(self, owner_id: str, *, for_update: bool = False) -> Cart | None:
        query = _carts().where(carts.c.owner_id == owner_id, carts.c.status == "open")
        found = await self._load(query, for_update=for_update)
        return found[0] if found else None

    async def lock(self, cart_ids: Sequence[str]) -> dict[str, Cart]:
        found = await self._load(_carts().where(carts.c.id.in_(list(cart_ids))), for_update=True)
        return {cart.id: cart for cart in found}

    async def lock_misflagged(self, product_id: int, limit: int) -> list[Cart]:
        # Two range scans of (product_id, short, quantity): lines shown short that now fit, and
        # lines shown fitting that are now short; a hot product's other lines are not read.
        stored = sa.select(stock_levels.c.available).where(stock_levels.c.product_id == product_id)
        available = sa.func.coalesce(stored.scalar_subquery(), 0)
        wrong = sa.select(cart_items.c.cart_id).where(
            cart_items.c.product_id == product_id,
            sa.or_(
                sa.and_(cart_items.c.short.is_(True), cart_items.c.quantity <= available),
                sa.and_(cart_items.c.short.is_(False), cart_items.c.quantity > available),
            ),
        )
        return await self._lock_open(wrong, limit)

    async def lock_mispriced(self, product_id: int, limit: int) -> list[Cart]:
        # Every line of the product is read: listing changes are rare, stock changes are not.
        listed = products.c.product_id == product_id
        name = sa.select(products.c.name).where(listed).scalar_subquery()
        price_cents = sa.select(products.c.price_cents).where(listed).scalar_subquery()
        stale = sa.select(cart_items.c.cart_id).where(
            cart_items.c.product_id == product_id,
            sa.or_(
                cart_items.c.shown_name.is_distinct_from(name),
                cart_items.c.shown_price_cents.is_distinct_from(price_cents),
            ),
        )
        return await self._lock_open(stale, limit)

    async def delete_idle_guest_carts(self, idle_since: datetime, limit: int) -> list[str]:
        idle = (
            sa.select(carts.c.id)
            .where(carts.c.owner_id.is_(None), carts.c.updated_at < idle_since)
            .order_by(carts.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        deleted = await self._session.execute(sa.delete(carts).where(carts.c.id.in_(idle)).returning(carts.c.id))
        ids = list(deleted.scalars())  # their lines go with them (ON DELETE CASCADE)
        if ids:
            channels = [cart_channel(cart_id) for cart_id in ids]
            await self._session.execute(sa.delete(channel_streams).where(channel_streams.c.channel.in_(channels)))
        return ids

    async def _lock_open(self, cart_ids: sa.Select[Any], limit: int) -> list[Cart]:
        """Lock the first ``limit`` open carts (by id) among ``cart_ids``."""
        return await self._load(
            _carts().where(carts.c.status == "open", carts.c.id.in_(cart_ids)).limit(limit), for_update=True
        )

    async def save(self, cart: Cart, shown: PricedCart) -> None:
        await self._session.execute(
            sa.update(carts)
            .where(carts.c.id == cart.id)
            .values(status=cart.status, version=cart.version, updated_at=sa.func.now())
        )
        await self._session.execute(
            sa.delete(cart_items).where(
                cart_items.c.cart_id == cart.id, cart_items.c.product_id.not_in(list(cart.lines))
            )
        )
        if not cart.lines:
            return
        lines = {line.product_id: line for line in shown.lines}
        rows = [
            {
                "cart_id": cart.id,
                "product_id": pid,
                "quantity": quantity,
                "short": lines[pid].short,
                "shown_name": lines[pid].name,
                "shown_price_cents": lines[pid].unit_price_cents,
            }
            for pid, quantity in cart.lines.items()
        ]
        upsert = pg_insert(cart_items).values(rows)
        shown_now = ("quantity", "short", "shown_name", "shown_price_cents")
        await self._session.execute(
            upsert.on_conflict_do_update(
                index_elements=[cart_items.c.cart_id, cart_items.c.product_id],
                set_={column: upsert.excluded[column] for column in shown_now},
            )
        )

    async def _load(self, query: sa.Select[Any], *, for_update: bool) -> list[Cart]:
        if for_update:
            query = query.with_for_update(of=carts)
        rows = (await self._session.execute(query.order_by(carts.c.id))).all()
        found = [Cart(r.id, r.owner_id, r.token_hash, r.status, r.version, epoch=r.epoch or "") for r in rows]
        if not found:
            return found
        by_id = {cart.id: cart for cart in found}
        lines = await self._session.execute(
            sa.select(cart_items.c.cart_id, cart_items.c.product_id, cart_items.c.quantity)
            .where(cart_items.c.cart_id.in_(list(by_id)))
            .order_by(cart_items.c.position)
        )
        for cart_id, product_id, quantity in lines:
            by_id[cart_id].lines[product_id] = quantity
        return found


class SqlCatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_listing(self, listing: Listing, changed_at: datetime) -> bool:
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock(*_product_lock(listing.product_id))))
        insert = pg_insert(products).values(
            product_id=listing.product_id,
            name=listing.name,
            price_cents=listing.price_cents,
            currency=listing.currency,
            changed_at=changed_at,
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[products.c.product_id],
            set_={
                "name": insert.excluded.name,
                "price_cents": insert.excluded.price_cents,
                "currency": insert.excluded.currency,
                "changed_at": insert.excluded.changed_at,
            },
            where=products.c.changed_at <= insert.excluded.changed_at,
        ).returning(products.c.product_id)
        return (await self._session.execute(stmt)).one_or_none() is not None

    async def record_stock(self, level: StockLevel) -> bool:
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock(*_product_lock(level.product_id))))
        insert = pg_insert(stock_levels).values(
            product_id=level.product_id, available=level.available, status=level.status, version=level.version
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[stock_levels.c.product_id],
            set_={
                "available": insert.excluded.available,
                "status": insert.excluded.status,
                "version": insert.excluded.version,
            },
            where=stock_levels.c.version < insert.excluded.version,
        ).returning(stock_levels.c.product_id)
        return (await self._session.execute(stmt)).one_or_none() is not None

    async def hold_products(self, product_ids: Sequence[int]) -> None:
        # Advisory, not row, locks: a product's first stock level has no row to lock yet.
        ids = sa.func.unnest(sa.literal(sorted(set(product_ids)), sa.ARRAY(sa.BigInteger))).column_valued()
        await self._session.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(*_product_lock(ids))))

    async def offers(self, product_ids: Sequence[int]) -> dict[int, Offer]:
        joined = products.outerjoin(stock_levels, stock_levels.c.product_id == products.c.product_id)
        query = (
            sa.select(
                products.c.product_id,
                products.c.name,
                products.c.price_cents,
                products.c.currency,
                sa.func.coalesce(stock_levels.c.available, 0),
            )
            .select_from(joined)
            .where(products.c.product_id.in_(list(product_ids)))
        )
        return {row[0]: Offer(*row) for row in await self._session.execute(query)}
