"""The orders tables (SQLAlchemy Core). The migrations create them; this is what code queries."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

STATUSES = ("pending", "confirmed", "paid", "packed", "shipped", "delivered", "rejected", "cancelled", "expired")
_status_known = ", ".join(f"'{s}'" for s in STATUSES)

# Ids are drawn before the insert: the aggregate is whole (id included) before it is stored.
order_ids = sa.Sequence("order_ids", metadata=metadata)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text),
    sa.Column("cart_id", sa.Text),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # The offset of the latest publication on order:{id}; bumped by every transition.
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("payment_due_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"status IN ({_status_known})", name="orders_status_known"),
    sa.CheckConstraint("version >= 1", name="orders_version_positive"),
    sa.Index("orders_by_user", "user_id", sa.text("id DESC")),
    sa.Index("orders_by_tenant", "tenant_id", sa.text("id DESC"), postgresql_where=sa.text("tenant_id IS NOT NULL")),
    sa.Index("orders_awaiting_payment", "payment_due_at", postgresql_where=sa.text("status = 'confirmed'")),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("product_id", sa.BigInteger, primary_key=True),
    sa.Column("position", sa.SmallInteger, nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.CheckConstraint("quantity > 0", name="order_lines_quantity_positive"),
    sa.CheckConstraint("unit_price_cents >= 0", name="order_lines_price_not_negative"),
)

order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text),
    sa.CheckConstraint(f"status IN ({_status_known})", name="order_history_status_known"),
)

# (user, Idempotency-Key) -> the order it created. The row is claimed first in the placing
# transaction, so a concurrent retry with the same key waits for it and then finds its order.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    # Drawn by the claim, before the order exists: the key is checked at commit.
    sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id", deferrable=True, initially="DEFERRED")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The catalog's products as its ProductChanged events tell them (a read model, never written by
# anyone else). ``changed_at`` is the event's time: an older event never overwrites a newer one.
catalog_products = sa.Table(
    "catalog_products",
    metadata,
    sa.Column("product_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)
