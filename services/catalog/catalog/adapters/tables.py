"""The catalog's tables (SQLAlchemy Core). The migrations create them; this is what code queries."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("sku", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("available", sa.BigInteger, nullable=False),
    # The offset of the latest publication on stock:{id}; bumped by every change of the stock state.
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("sale_starts_at", sa.DateTime(timezone=True)),
    # True once stock:{id} shows the product on sale; the drop scheduler flips it at sale start.
    sa.Column("sale_announced", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("available >= 0", name="products_available_not_negative"),
    sa.CheckConstraint("price_cents >= 0", name="products_price_not_negative"),
    sa.Index(
        "products_unannounced_sales",
        "sale_starts_at",
        postgresql_where=sa.text("NOT sale_announced AND sale_starts_at IS NOT NULL"),
    ),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("order_id", sa.BigInteger, primary_key=True),
    sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.id"), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("released_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("quantity > 0", name="reservations_quantity_positive"),
    sa.CheckConstraint("state IN ('reserved', 'released')", name="reservations_state_known"),
    sa.Index("reservations_product", "product_id"),
)

# One row per order the catalog has decided on. A release that overtakes its OrderPlaced leaves a
# 'released' row (a tombstone), so the late OrderPlaced finds the order decided and does nothing.
order_outcomes = sa.Table(
    "order_outcomes",
    metadata,
    sa.Column("order_id", sa.BigInteger, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("state IN ('reserved', 'rejected', 'released')", name="order_outcomes_state_known"),
)
