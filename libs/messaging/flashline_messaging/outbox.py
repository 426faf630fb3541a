"""Write integration events and channel publications in the caller's transaction.

Nothing here talks to RabbitMQ: rows wait in ``outbox`` until the relay has a confirm for them,
so publishing never sits on a request's critical path and nothing committed is lost. A
``pg_notify`` fired in the same transaction wakes the relay the moment the transaction commits.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.publications import StreamPosition
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE
from flashline_messaging.schema import channel_streams, outbox_table

NOTIFY_CHANNEL = "flashline_outbox"


def new_epoch() -> str:
    return secrets.token_hex(4)


_NOTIFIED = "flashline_outbox_notified"


async def _notify(session: AsyncSession) -> None:
    """Wake the relay at commit; once per transaction (Postgres would fold repeats anyway)."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_NOTIFIED) is transaction:
        return
    await session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))
    session.info[_NOTIFIED] = transaction


def _event_row(envelope: EventEnvelope) -> dict[str, Any]:
    return {
        "exchange": EVENTS_EXCHANGE,
        "routing_key": envelope.routing_key,
        "message_id": str(envelope.event_id),
        "body": orjson.dumps(envelope.model_dump(mode="json")),
    }


async def add_event(session: AsyncSession, envelope: EventEnvelope) -> None:
    """Queue an integration event; it is published after (and only if) the caller commits."""
    await add_events(session, [envelope])


async def add_events(session: AsyncSession, envelopes: list[EventEnvelope]) -> None:
    """Queue several events in one statement, in list order (the relay keeps that order)."""
    if not envelopes:
        return
    await session.execute(sa.insert(outbox_table).values([_event_row(e) for e in envelopes]))
    await _notify(session)


# One round trip: advance the channel's offset (locking its row until commit) and queue the
# publication carrying that offset. The publication JSON is completed in SQL with offset and epoch.
_PUBLISH_TO_CHANNEL = sa.text(
    """
    WITH position AS (
        INSERT INTO channel_streams AS cs (channel, epoch, top_offset, last_data, updated_at)
        VALUES (:channel, :epoch, 1, :data, :now)
        ON CONFLICT (channel) DO UPDATE
            SET top_offset = cs.top_offset + 1, last_data = EXCLUDED.last_data, updated_at = EXCLUDED.updated_at
        RETURNING top_offset, epoch
    ), queued AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body)
        SELECT :exchange, :channel, :channel || '@' || epoch || ':' || top_offset,
               convert_to((CAST(:publication AS jsonb)
                           || jsonb_build_object('offset', top_offset, 'epoch', epoch))::text, 'UTF8')
        FROM position
    )
    SELECT top_offset, epoch FROM position
    """
)


async def publish_to_channel(
    session: AsyncSession,
    channel: str,
    data: dict[str, Any],
    *,
    exclude_client: str | None = None,
) -> StreamPosition:
    """Give ``channel`` its next offset and queue the publication carrying ``data``.

    The upsert locks the channel's row until the caller commits, so concurrent writers of one
    channel serialize here: offsets are gapless, monotonic, and commit in offset order.
    """
    now = datetime.now(UTC)
    publication: dict[str, Any] = {"channel": channel, "data": data, "published_at": now.isoformat()}
    if exclude_client:
        publication["exclude_client"] = exclude_client
    offset, epoch = (
        await session.execute(
            _PUBLISH_TO_CHANNEL,
            {
                "channel": channel,
                "epoch": new_epoch(),
                "data": orjson.dumps(data),
                "now": now,
                "exchange": PUSH_EXCHANGE,
                "publication": orjson.dumps(publication).decode(),
            },
        )
    ).one()
    await _notify(session)
    return StreamPosition(offset=offset, epoch=epoch)


async def stream_position(session: AsyncSession, channel: str) -> StreamPosition:
    """Where ``channel`` stands now; offset 0 and an empty epoch before its first publication."""
    row = (
        await session.execute(
            sa.select(channel_streams.c.top_offset, channel_streams.c.epoch).where(channel_streams.c.channel == channel)
        )
    ).one_or_none()
    return StreamPosition(offset=row[0], epoch=row[1]) if row else StreamPosition(offset=0, epoch="")


async def stream_positions(session: AsyncSession, channels: list[str]) -> dict[str, StreamPosition]:
    """Positions of many channels at once (for list endpoints)."""
    rows = await session.execute(
        sa.select(channel_streams.c.channel, channel_streams.c.top_offset, channel_streams.c.epoch).where(
            channel_streams.c.channel.in_(channels)
        )
    )
    found = {ch: StreamPosition(offset=o, epoch=e) for ch, o, e in rows}
    return {ch: found.get(ch, StreamPosition(offset=0, epoch="")) for ch in channels}


async def latest_publication(session: AsyncSession, channel: str) -> dict[str, Any] | None:
    """The channel's position and latest data, for the gateway's cold lookups."""
    row = (
        await session.execute(
            sa.select(channel_streams.c.top_offset, channel_streams.c.epoch, channel_streams.c.last_data).where(
                channel_streams.c.channel == channel
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return {"channel": channel, "offset": row[0], "epoch": row[1], "data": orjson.loads(row[2])}
