"""Repositories: the ports the service layer uses, and their SQL adapters (Core, no ORM objects).

Writers of one order serialize on its row lock (``get``/``get_many`` with ``for_update=True``),
taken before anything is written to the outbox, so versions and channel offsets advance one at
a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from flashline_contracts.publications import StreamPosition
from flashline_messaging.outbox import stream_position
from orders.adapters.tables import catalog_products, idempotency_keys, order_history, order_ids, order_lines, orders
from orders.domain.model import HistoryEntry, Order
from orders.domain.pricing import CatalogProduct
from orders.domain.values import Line, Status


@dataclass(frozen=True, slots=True)
class KeyUse:
    """An Idempotency-Key's claim: by which request, for which order, and whether it is this request's.

    A fresh claim draws the id of the order the claiming transaction then creates (the foreign key
    is checked at commit), so placing an order needs no round trip for its id nor to attach it.
    """

    request_hash: str
    order_id: int
    earlier: bool  # claimed by an earlier request (which committed), not by this one


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A request's claim on its user's Idempotency-Key."""

    user_id: str
    key: str
    request_hash: str


class OrderRepository(Protocol):
    async def add_many(self, orders: Sequence[Order]) -> None:
        """Store new orders with their lines and history (one round trip)."""

    async def get(self, order_id: int, *, for_update: bool = False) -> Order | None: ...

    async def get_many(self, order_ids: Iterable[int], *, for_update: bool = False) -> list[Order]:
        """Those of ``order_ids`` that exist, by ascending id; ``for_update`` locks them in that order."""

    async def save_many(self, orders: Sequence[Order]) -> None:
        """Write the state of orders read ``for_update`` and their new history entries (one round trip)."""

    async def overdue(self, now: datetime, limit: int) -> list[Order]:
        """Confirmed orders whose payment is due, locked; rows other replicas hold are skipped."""

    async def page(
        self, *, user_id: str | None = None, tenant_id: str | None = None, before: int, limit: int
    ) -> list[Order]:
        """The orders of a user or of a tenant with an id below ``before``, newest first."""


class IdempotencyRepository(Protocol):
    async def claim(self, user_id: str, key: str, request_hash: str) -> KeyUse:
        """Claim ``key`` for this request, with a new order id; or the earlier request's use of it."""

    async def claim_many(self, claims: Sequence[KeyClaim]) -> list[int | None]:
        """Claim distinct keys at once (one round trip): the new order id of each key claimed now,
        None for a key an earlier request claimed."""


class CatalogRepository(Protocol):
    async def record(self, product: CatalogProduct) -> bool:
        """Keep ``product`` unless what we hold is newer; True if it was kept."""

    async def by_ids(self, ids: Iterable[int]) -> dict[int, CatalogProduct]: ...


class StreamRepository(Protocol):
    async def position(self, channel: str) -> StreamPosition: ...


_ORDER = (
    orders.c.id,
    orders.c.user_id,
    orders.c.tenant_id,
    orders.c.cart_id,
    orders.c.currency,
    orders.c.status,
    orders.c.version,
    orders.c.reason,
    orders.c.payment_due_at,
    orders.c.created_at,
    orders.c.updated_at,
)


def _aggregated(column: sa.ColumnElement[Any], order_by: sa.ColumnElement[Any], owner: sa.Column[Any]) -> Any:
    """``(SELECT array_agg(column ORDER BY order_by) FROM its table WHERE owner = orders.id)``."""
    return (
        sa.select(sa.func.array_agg(aggregate_order_by(column, order_by))).where(owner == orders.c.id).scalar_subquery()
    )


def _lines_of(column: sa.Column[Any]) -> Any:
    return _aggregated(column, order_lines.c.position, order_lines.c.order_id).label(f"line_{column.name}")


def _history_of(column: sa.Column[Any]) -> Any:
    return _aggregated(column, order_history.c.version, order_history.c.order_id).label(f"history_{column.name}")


_LINES = tuple(map(_lines_of, (order_lines.c.product_id, order_lines.c.quantity, order_lines.c.unit_price_cents)))
_HISTORY = tuple(
    map(_history_of, (order_history.c.version, order_history.c.status, order_history.c.at, order_history.c.reason))
)


def _order_of(row: Any) -> Order:
    lines = zip(row.line_product_id or (), row.line_quantity or (), row.line_unit_price_cents or (), strict=True)
    history = zip(
        row.history_version or (), row.history_status or (), row.history_at or (), row.history_reason or (), strict=True
    )
    return Order(
        id=row.id,
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        cart_id=row.cart_id,
        lines=tuple(Line(product_id, quantity, price) for product_id, quantity, price in lines),
        currency=row.currency,
        status=Status(row.status),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reason=row.reason,
        payment_due_at=row.payment_due_at,
        history=[HistoryEntry(version, Status(status), at, reason) for version, status, at, reason in history],
    )


_GET = sa.select(*_ORDER, *_LINES, *_HISTORY).where(orders.c.id == sa.bindparam("order_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
# ``= ANY(array)``, not an expanding IN: one statement text for any number of ids.
_GET_MANY = (
    sa.select(*_ORDER, *_LINES, *_HISTORY)
    .where(orders.c.id == sa.any_(sa.bindparam("order_ids", type_=ARRAY(sa.BigInteger))))
    .order_by(orders.c.id)
)
_GET_MANY_FOR_UPDATE = _GET_MANY.with_for_update()


class SqlOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, orders: Sequence[Order]) -> None:
        if orders:
            await self._session.execute(_ADD_ORDERS, {**_new_rows(orders), **_lines(orders), **_histories(orders)})

    async def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        query = _GET_FOR_UPDATE if for_update else _GET
        row = (await self._session.execute(query, {"order_id": order_id})).one_or_none()
        return _order_of(row) if row is not None else None

    async def get_many(self, order_ids: Iterable[int], *, for_update: bool = False) -> list[Order]:
        query = _GET_MANY_FOR_UPDATE if for_update else _GET_MANY
        rows = await self._session.execute(query, {"order_ids": list(order_ids)})
        return [_order_of(row) for row in rows]

    async def save_many(self, orders: Sequence[Order]) -> None:
        if orders:
            await self._session.execute(_SAVE_ORDERS, {**_rows(orders), **_histories(orders)})

    async def overdue(self, now: datetime, limit: int) -> list[Order]:
        # SKIP LOCKED: an order another replica is expiring (or a customer is paying) is left to
        # it; once that commits the order is no longer confirmed and stops matching.
        query = (
            sa.select(*_ORDER)
            .where(orders.c.status == Status.CONFIRMED.value, orders.c.payment_due_at <= now)
            .order_by(orders.c.payment_due_at, orders.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._load(query)

    async def page(
        self, *, user_id: str | None = None, tenant_id: str | None = None, before: int, limit: int
    ) -> list[Order]:
        owner = orders.c.user_id == user_id if user_id is not None else orders.c.tenant_id == tenant_id
        query = sa.select(*_ORDER).where(owner, orders.c.id < before).order_by(orders.c.id.desc()).limit(limit)
        return await self._load(query)

    async def _load(self, query: sa.Select[Any]) -> list[Order]:
        # One round trip: each order row carries its lines and history as parallel arrays.
        rows = (await self._session.execute(query.add_columns(*_LINES, *_HISTORY))).all()
        return [_order_of(row) for row in rows]


# Writes are one statement each (one round trip): the order row, then its lines and history from
# parallel arrays, in data-modifying CTEs. The texts do not depend on how many lines or entries
# there are, so each connection prepares them once. History is append-only, keyed by version:
# entries already stored are skipped.
_HISTORY_ROWS = """
    INSERT INTO order_history (order_id, version, status, at, reason)
    SELECT written.id, h.version, h.status, h.at, h.reason
    FROM written JOIN unnest(CAST(:history_orders AS bigint[]), CAST(:history_versions AS bigint[]),
                             CAST(:history_statuses AS text[]), CAST(:history_ats AS timestamptz[]),
                             CAST(:history_reasons AS text[]))
                  AS h(order_id, version, status, at, reason) ON h.order_id = written.id
    ON CONFLICT DO NOTHING
"""

_ADD_ORDERS = sa.text(
    f"""
    WITH written AS (
        INSERT INTO orders (id, user_id, tenant_id, cart_id, currency, total_cents, status, version, reason,
                            payment_due_at, created_at, updated_at)
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:user_ids AS text[]), CAST(:tenant_ids AS text[]),
                             CAST(:cart_ids AS text[]), CAST(:currencies AS text[]), CAST(:totals AS bigint[]),
                             CAST(:statuses AS text[]), CAST(:versions AS bigint[]), CAST(:reasons AS text[]),
                             CAST(:payment_due_ats AS timestamptz[]), CAST(:created_ats AS timestamptz[]),
                             CAST(:updated_ats AS timestamptz[]))
        RETURNING id
    ), lines AS (
        INSERT INTO order_lines (order_id, product_id, position, quantity, unit_price_cents)
        SELECT written.id, l.product_id, l.position, l.quantity, l.unit_price_cents
        FROM written JOIN unnest(CAST(:line_orders AS bigint[]), CAST(:line_products AS bigint[]),
                                 CAST(:line_positions AS smallint[]), CAST(:line_quantities AS bigint[]),
                                 CAST(:line_prices AS bigint[]))
                      AS l(order_id, product_id, position, quantity, unit_price_cents) ON l.order_id = written.id
    )
    {_HISTORY_ROWS}
    """
)

# A confirmation batch saves all its orders at once: their states as parallel arrays.
_SAVE_ORDERS = sa.text(
    f"""
    WITH written AS (
        UPDATE orders SET status = o.status, version = o.version, reason = o.reason,
                          payment_due_at = o.payment_due_at, updated_at = o.updated_at
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:versions AS bigint[]),
                    CAST(:reasons AS text[]), CAST(:payment_due_ats AS timestamptz[]),
                    CAST(:updated_ats AS timestamptz[]))
             AS o(id, status, version, reason, payment_due_at, updated_at)
        WHERE orders.id = o.id
        RETURNING orders.id
    )
    {_HISTORY_ROWS}
    """
)


def _lines(orders: Sequence[Order]) -> dict[str, Any]:
    lines = [(order.id, position, line) for order in orders for position, line in enumerate(order.lines)]
    return {
        "line_orders": [order_id for order_id, _, _ in lines],
        "line_products": [line.product_id for _, _, line in lines],
        "line_positions": [position for _, position, _ in lines],
        "line_quantities": [line.quantity for _, _, line in lines],
        "line_prices": [line.unit_price_cents for _, _, line in lines],
    }


def _histories(orders: Sequence[Order]) -> dict[str, Any]:
    entries = [(order.id, e) for order in orders for e in order.history]
    return {
        "history_orders": [order_id for order_id, _ in entries],
        "history_versions": [e.version for _, e in entries],
        "history_statuses": [e.status.value for _, e in entries],
        "history_ats": [e.at for _, e in entries],
        "history_reasons": [e.reason for _, e in entries],
    }


def _rows(orders: Sequence[Order]) -> dict[str, Any]:
    """What changes after placement (owner, cart, lines and currency never do), as parallel arrays."""
    return {
        "ids": [o.id for o in orders],
        "statuses": [o.status.value for o in orders],
        "versions": [o.version for o in orders],
        "reasons": [o.reason for o in orders],
        "payment_due_ats": [o.payment_due_at for o in orders],
        "updated_ats": [o.updated_at for o in orders],
    }


def _new_rows(orders: Sequence[Order]) -> dict[str, Any]:
    """New orders, whole, as parallel arrays."""
    return {
        **_rows(orders),
        "user_ids": [o.user_id for o in orders],
        "tenant_ids": [o.tenant_id for o in orders],
        "cart_ids": [o.cart_id for o in orders],
        "currencies": [o.currency for o in orders],
        "totals": [o.total_cents for o in orders],
        "created_ats": [o.created_at for o in orders],
    }


# The statements of the hot paths are built once, with bound parameters: SQLAlchemy then reuses
# their cache keys and compiled forms instead of rebuilding and hashing a new statement per call.
# (Bound names differ from column names: insert/update reserve those for their own parameters.)
_KEY = sa.and_(idempotency_keys.c.user_id == sa.bindparam("owner"), idempotency_keys.c.key == sa.bindparam("idem_key"))
_CLAIM_KEY = (
    pg_insert(idempotency_keys)
    .values(
        user_id=sa.bindparam("owner"),
        key=sa.bindparam("idem_key"),
        request_hash=sa.bindparam("hash"),
        order_id=order_ids.next_value(),  # drawn on a conflict too: a gap in the ids, nothing more
    )
    .on_conflict_do_nothing()
    .returning(idempotency_keys.c.order_id)
)
# Keys claimed at once, in the order given; a key claimed before has no new order id. (Keys must
# be distinct: two equal ones would both join the one row the first inserts.)
_CLAIM_KEYS = sa.text(
    """
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:owners AS text[]), CAST(:idem_keys AS text[]), CAST(:hashes AS text[]))
                      WITH ORDINALITY AS w(user_id, key, request_hash, n)
    ), claimed AS (
        INSERT INTO idempotency_keys (user_id, key, request_hash, order_id)
        SELECT user_id, key, request_hash, nextval('order_ids') FROM wanted ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING user_id, key, order_id
    )
    SELECT claimed.order_id FROM wanted LEFT JOIN claimed USING (user_id, key) ORDER BY wanted.n
    """
)
_KEY_USE = sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.order_id).where(_KEY)
_PRODUCTS = sa.select(catalog_products).where(catalog_products.c.product_id.in_(sa.bindparam("ids", expanding=True)))


class SqlIdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, user_id: str, key: str, request_hash: str) -> KeyUse:
        # A concurrent claim of the same key blocks here until its transaction ends; if it
        # committed, our insert does nothing and the select below sees its row.
        params = {"owner": user_id, "idem_key": key}
        inserted = (await self._session.execute(_CLAIM_KEY, {**params, "hash": request_hash})).first()
        if inserted is not None:
            return KeyUse(request_hash, inserted.order_id, earlier=False)
        row = (await self._session.execute(_KEY_USE, params)).one()
        return KeyUse(row.request_hash, row.order_id, earlier=True)

    async def claim_many(self, claims: Sequence[KeyClaim]) -> list[int | None]:
        if not claims:
            return []
        params = {
            "owners": [c.user_id for c in claims],
            "idem_keys": [c.key for c in claims],
            "hashes": [c.request_hash for c in claims],
        }
        return [row.order_id for row in await self._session.execute(_CLAIM_KEYS, params)]


class SqlCatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, product: CatalogProduct) -> bool:
        insert = pg_insert(catalog_products).values(
            product_id=product.product_id,
            name=product.name,
            price_cents=product.price_cents,
            currency=product.currency,
            changed_at=product.changed_at,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[catalog_products.c.product_id],
            set_={c: insert.excluded[c] for c in ("name", "price_cents", "currency", "changed_at")},
            where=catalog_products.c.changed_at < insert.excluded.changed_at,
        ).returning(catalog_products.c.product_id)
        return (await self._session.execute(upsert)).first() is not None

    async def by_ids(self, ids: Iterable[int]) -> dict[int, CatalogProduct]:
        rows = await self._session.execute(_PRODUCTS, {"ids": list(ids)})
        return {row.product_id: CatalogProduct(*row) for row in rows}


class SqlStreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def position(self, channel: str) -> StreamPosition:
        return await stream_position(self._session, channel)
