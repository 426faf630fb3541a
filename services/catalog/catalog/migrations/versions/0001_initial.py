"""Products, reservations, order outcomes, and the messaging tables (outbox, inbox, channel streams).

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flashline_messaging.schema import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("sku", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("available", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True)),
        sa.Column("sale_announced", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("available >= 0", name="products_available_not_negative"),
        sa.CheckConstraint("price_cents >= 0", name="products_price_not_negative"),
    )
    op.create_index(
        "products_unannounced_sales",
        "products",
        ["sale_starts_at"],
        postgresql_where=sa.text("NOT sale_announced AND sale_starts_at IS NOT NULL"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.BigInteger, primary_key=True),
        sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.id"), primary_key=True),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("quantity > 0", name="reservations_quantity_positive"),
        sa.CheckConstraint("state IN ('reserved', 'released')", name="reservations_state_known"),
    )
    op.create_index("reservations_product", "reservations", ["product_id"])
    op.create_table(
        "order_outcomes",
        sa.Column("order_id", sa.BigInteger, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('reserved', 'rejected', 'released')", name="order_outcomes_state_known"),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("order_outcomes")
    op.drop_table("reservations")
    op.drop_table("products")
