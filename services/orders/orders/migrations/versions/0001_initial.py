"""Orders, their lines and history, idempotency keys, the catalog read model, and the messaging tables.

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

STATUSES = ("pending", "confirmed", "paid", "packed", "shipped", "delivered", "rejected", "cancelled", "expired")
STATUS_KNOWN = "status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES))


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("order_ids")))
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text),
        sa.Column("cart_id", sa.Text),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_cents", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("payment_due_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(STATUS_KNOWN, name="orders_status_known"),
        sa.CheckConstraint("version >= 1", name="orders_version_positive"),
    )
    op.create_index("orders_by_user", "orders", ["user_id", sa.text("id DESC")])
    op.create_index(
        "orders_by_tenant",
        "orders",
        ["tenant_id", sa.text("id DESC")],
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    op.create_index(
        "orders_awaiting_payment", "orders", ["payment_due_at"], postgresql_where=sa.text("status = 'confirmed'")
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("product_id", sa.BigInteger, primary_key=True),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
        sa.CheckConstraint("quantity > 0", name="order_lines_quantity_positive"),
        sa.CheckConstraint("unit_price_cents >= 0", name="order_lines_price_not_negative"),
    )
    op.create_table(
        "order_history",
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text),
        sa.CheckConstraint(STATUS_KNOWN, name="order_history_status_known"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "catalog_products",
        sa.Column("product_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    for table in ("catalog_products", "idempotency_keys", "order_history", "order_lines", "orders"):
        op.drop_table(table)
    op.execute(sa.schema.DropSequence(sa.Sequence("order_ids")))
