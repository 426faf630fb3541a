"""Cart lines remember the name and unit price their tabs were last shown.

A listing change then republishes only the carts that show it wrong, as the short flag does for
stock. Lines written before this revision have neither (NULL): the next change of their product
republishes them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cart_items", sa.Column("shown_name", sa.Text))
    op.add_column("cart_items", sa.Column("shown_price_cents", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("cart_items", "shown_price_cents")
    op.drop_column("cart_items", "shown_name")
