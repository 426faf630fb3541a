"""The cart's tables (SQLAlchemy Core). The migrations create them; this is what code queries."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Read models kept from the catalog's events (the catalog's own database is never read).
products = sa.Table(
    "products",
    metadata,
    sa.Column("product_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # occurred_at of the ProductChanged applied last: an older event never overwrites a newer one.
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("product_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("available", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # The catalog's stock version: duplicates and reordered events never regress availability.
    sa.Column("version", sa.BigInteger, nullable=False),
)

carts = sa.Table(
    "carts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("owner_id", sa.Text),
    sa.Column("token_hash", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    # The offset of the latest publication on cart:{id}.
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("status IN ('open', 'closed')", name="carts_status_known"),
    sa.CheckConstraint("(owner_id IS NULL) <> (token_hash IS NULL)", name="carts_one_credential"),
    sa.Index(
        "carts_one_open_per_owner",
        "owner_id",
        unique=True,
        postgresql_where=sa.text("status = 'open' AND owner_id IS NOT NULL"),
    ),
    # The guest-cart sweeper's scan: guest carts, least recently changed first.
    sa.Index("carts_guest_updated_at", "updated_at", postgresql_where=sa.text("owner_id IS NULL")),
)

cart_items = sa.Table(
    "cart_items",
    metadata,
    sa.Column("cart_id", sa.Text, sa.ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.product_id"), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    # The short flag the cart's tabs were last shown: a stock change republishes only carts
    # whose shown flag is now wrong (two index range scans, however hot the product).
    sa.Column("short", sa.Boolean, nullable=False),
    # The name and unit price they were last shown (NULL: written before these were kept): a
    # listing change republishes only carts that show it wrong.
    sa.Column("shown_name", sa.Text),
    sa.Column("shown_price_cents", sa.BigInteger),
    sa.Column("position", sa.BigInteger, sa.Identity(always=True), nullable=False),  # insertion order
    sa.CheckConstraint("quantity > 0", name="cart_items_quantity_positive"),
    sa.Index("cart_items_product_short_quantity", "product_id", "short", "quantity"),
)
