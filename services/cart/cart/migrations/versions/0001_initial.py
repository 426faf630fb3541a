"""Carts, their items, the catalog read models, and the messaging tables (outbox, inbox, channel streams).

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
        sa.Column("product_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stock_levels",
        sa.Column("product_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("available", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "carts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text),
        sa.Column("token_hash", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('open', 'closed')", name="carts_status_known"),
        sa.CheckConstraint("(owner_id IS NULL) <> (token_hash IS NULL)", name="carts_one_credential"),
    )
    op.create_index(
        "carts_one_open_per_owner",
        "carts",
        ["owner_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open' AND owner_id IS NOT NULL"),
    )
    op.create_table(
        "cart_items",
        sa.Column("cart_id", sa.Text, sa.ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.product_id"), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("short", sa.Boolean, nullable=False),
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name="cart_items_quantity_positive"),
    )
    op.create_index("cart_items_product_short_quantity", "cart_items", ["product_id", "short", "quantity"])
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    op.drop_table("cart_items")
    op.drop_table("carts")
    op.drop_table("stock_levels")
    op.drop_table("products")
