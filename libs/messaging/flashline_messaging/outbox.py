"""Write integration events and channel publications in the caller's transaction.

Nothing here talks to RabbitMQ: rows wait in ``outbox`` until the relay has a confirm for them,
so publishing never sits on a request's critical path and nothing committed is lost. A
``pg_notify`` fired in the same transaction wakes the relay the moment the transaction commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.publications import StreamPosition
from flashline_contracts.topology import EVENTS_EXCHANGE, PUSH_EXCHANGE
from flashline_messaging.schema import channel_streams

NOTIFY_CHANNEL = "flashline_outbox"


def new_epoch() -> str:
    return secrets.token_hex(4)


def _event_row(envelope: EventEnvelope) -> dict[str, Any]:
    return {
        "exchange": EVENTS_EXCHANGE,
        "routing_key": envelope.topic,
        "message_id": str(envelope.event_id),
        "body": orjson.dumps(envelope.model_dump(mode="json")),
    }


def _event_params(envelopes: Sequence[EventEnvelope]) -> dict[str, Any]:
    rows = [_event_row(e) for e in envelopes]
    return {
        "event_exchanges": [r["exchange"] for r in rows],
        "event_keys": [r["routing_key"] for r in rows],
        "event_ids": [r["message_id"] for r in rows],
        "event_bodies": [r["body"] for r in rows],
        "notify": NOTIFY_CHANNEL,
    }


# Integration events as parallel arrays, inserted in list order (the relay keeps that order). The
# SQL text does not depend on how many there are, so each connection prepares it once.
_QUEUED_EVENTS = """
    INSERT INTO outbox (exchange, routing_key, message_id, body)
    SELECT e.exchange, e.routing_key, e.message_id, e.body
    FROM unnest(CAST(:event_exchanges AS text[]), CAST(:event_keys AS text[]),
                CAST(:event_ids AS text[]), CAST(:event_bodies AS bytea[]))
         WITH ORDINALITY AS e(exchange, routing_key, message_id, body, n) {after}
    ORDER BY e.n
"""

# pg_notify wakes the relay when the transaction commits (repeats within one are folded by
# Postgres); it rides along in the writing statement instead of costing a round trip of its own.
_ADD_EVENTS = sa.text(f"WITH queued AS ({_QUEUED_EVENTS.format(after='')}) SELECT pg_notify(:notify, '')")


async def add_event(session: AsyncSession, envelope: EventEnvelope) -> None:
    """Queue an integration event; it is published after (and only if) the caller commits."""
    await add_events(session, [envelope])


async def add_events(session: AsyncSession, envelopes: Sequence[EventEnvelope]) -> None:
    """Queue several events in one statement, in list order (the relay keeps that order)."""
    if not envelopes:
        return
    await session.execute(_ADD_EVENTS, _event_params(envelopes))


# One round trip: advance the channel's offset (locking its row until commit), queue the
# publication carrying that offset, queue the integration events given with it (after the
# publication: they read its RETURNING), wake the relay. The publication JSON is completed in SQL
# with offset and epoch.
_PUBLISH_TO_CHANNEL = sa.text(
    f"""
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
        RETURNING id
    ), events AS ({_QUEUED_EVENTS.format(after="CROSS JOIN (SELECT count(*) FROM queued) AS published")})
    SELECT top_offset, epoch, pg_notify(:notify, '') FROM position
    """
)


async def publish_to_channel(
    session: AsyncSession,
    channel: str,
    data: dict[str, Any],
    *,
    exclude_client: str | None = None,
    events: Sequence[EventEnvelope] = (),
) -> StreamPosition:
    """Give ``channel`` its next offset and queue the publication carrying ``data``.

    The upsert locks the channel's row until the caller commits, so concurrent writers of one
    channel serialize here: offsets are gapless, monotonic, and commit in offset order.
    ``events`` are queued in the same statement, right after the publication and in list order
    (as ``add_events`` would), which saves a round trip while the caller holds that lock and
    whatever it locked before.
    """
    now = datetime.now(UTC)
    publication: dict[str, Any] = {"channel": channel, "data": data, "published_at": now.isoformat()}
    if exclude_client:
        publication["exclude_client"] = exclude_client
    offset, epoch, _ = (
        await session.execute(
            _PUBLISH_TO_CHANNEL,
            {
                "channel": channel,
                "epoch": new_epoch(),
                "data": orjson.dumps(data),
                "now": now,
                "exchange": PUSH_EXCHANGE,
                "publication": orjson.dumps(publication).decode(),
                **_event_params(events),
            },
        )
    ).one()
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
