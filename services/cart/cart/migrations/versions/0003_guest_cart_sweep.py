"""An index for the guest-cart sweeper: guest carts by when they last changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("carts_guest_updated_at", "carts", ["updated_at"], postgresql_where=sa.text("owner_id IS NULL"))


def downgrade() -> None:
    op.drop_index("carts_guest_updated_at", table_name="carts")
