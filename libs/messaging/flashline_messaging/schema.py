"""The tables this library owns inside each service's database.

Each service's first migration creates them with ``create_messaging_tables``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("exchange", sa.Text, nullable=False),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

channel_streams = sa.Table(
    "channel_streams",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("epoch", sa.Text, nullable=False),
    sa.Column("top_offset", sa.BigInteger, nullable=False),
    sa.Column("last_data", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def create_messaging_tables(op: object) -> None:
    """Alembic helper: create this library's tables (call from a service's migration)."""
    metadata.create_all(op.get_bind())  # type: ignore[attr-defined]


def drop_messaging_tables(op: object) -> None:
    metadata.drop_all(op.get_bind())  # type: ignore[attr-defined]
