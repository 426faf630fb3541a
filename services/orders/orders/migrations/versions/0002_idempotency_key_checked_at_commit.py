"""An idempotency key's order is checked at commit: the claim draws the order's id before the order exists.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONSTRAINT = "idempotency_keys_order_id_fkey"  # Postgres's name for 0001's unnamed foreign key


def _foreign_key(*, deferred: bool) -> None:
    op.drop_constraint(CONSTRAINT, "idempotency_keys", type_="foreignkey")
    op.create_foreign_key(
        CONSTRAINT,
        "idempotency_keys",
        "orders",
        ["order_id"],
        ["id"],
        deferrable=deferred or None,
        initially="DEFERRED" if deferred else None,
    )


def upgrade() -> None:
    _foreign_key(deferred=True)


def downgrade() -> None:
    _foreign_key(deferred=False)
