"""Write integration events and channel publications in the caller's transaction.

Nothing here talks to RabbitMQ: rows wait in ``outbox`` until the relay has a confirm for them,
so publishing never sits on a request's critical path and nothing committed is lost. A
``pg_notify`` fired in the same transaction wakes the relay the moment the transaction commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
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


# One round trip for every publication of a transaction: advance each channel's offset by its
# number of publications (locking its row until commit, channels in name order), queue the
# publications in the order given, each carrying its offset (a channel's in order), queue the
# integration events given with them (after the publications: they read their RETURNING), wake the
# relay. A channel named twice is one upsert (Postgres refuses to update a row twice in a statement).
# The publication JSON is completed in SQL with offset and epoch.
_PUBLISH = sa.text(
    f"""
    WITH input AS (
        SELECT p.channel, p.data, p.publication, p.epoch, p.n
        FROM unnest(CAST(:channels AS text[]), CAST(:datas AS bytea[]), CAST(:publications AS text[]),
                    CAST(:epochs AS text[])) WITH ORDINALITY AS p(channel, data, publication, epoch, n)
    ), per_channel AS (
        SELECT channel, count(*) AS published, (array_agg(data ORDER BY n DESC))[1] AS last_data, min(epoch) AS epoch
        FROM input GROUP BY channel
    ), position AS (
        INSERT INTO channel_streams AS cs (channel, epoch, top_offset, last_data, updated_at)
        SELECT channel, epoch, published, last_data, :now FROM per_channel ORDER BY channel
        ON CONFLICT (channel) DO UPDATE
            SET top_offset = cs.top_offset + EXCLUDED.top_offset, last_data = EXCLUDED.last_data,
                updated_at = EXCLUDED.updated_at
        RETURNING channel, top_offset, epoch
    ), numbered AS (
        SELECT i.n, i.channel, i.publication, position.epoch,
               position.top_offset - count(*) OVER (PARTITION BY i.channel)
                   + row_number() OVER (PARTITION BY i.channel ORDER BY i.n) AS stream_offset
        FROM input AS i JOIN position USING (channel)
    ), queued AS (
        INSERT INTO outbox (exchange, routing_key, message_id, body)
        SELECT :exchange, channel, channel || '@' || epoch || ':' || stream_offset,
               convert_to((CAST(publication AS jsonb)
                           || jsonb_build_object('offset', stream_offset, 'epoch', epoch))::text, 'UTF8')
        FROM numbered ORDER BY n
        RETURNING id
    ), events AS ({_QUEUED_EVENTS.format(after="CROSS JOIN (SELECT count(*) FROM queued) AS published")})
    SELECT stream_offset, epoch, pg_notify(:notify, '') FROM numbered ORDER BY n
    """
)


@dataclass(frozen=True, slots=True)
class Publication:
    """One publication for ``publish_to_channels``: ``data`` for ``channel``; the gateway client
    ``exclude_client`` (the tab that made the change) does not receive it."""

    channel: str
    data: dict[str, Any]
    exclude_client: str | None = None


async def publish_to_channel(
    session: AsyncSession,
    channel: str,
    data: dict[str, Any],
    *,
    exclude_client: str | None = None,
    events: Sequence[EventEnvelope] = (),
) -> StreamPosition:
    """Give ``channel`` its next offset and queue the publication carrying ``data`` (see ``publish_to_channels``)."""
    return (await publish_to_channels(session, [Publication(channel, data, exclude_client)], events=events))[0]


async def publish_to_channels(
    session: AsyncSession, publications: Sequence[Publication], *, events: Sequence[EventEnvelope] = ()
) -> list[StreamPosition]:
    """Give each publication its channel's next offset and queue them, in one round trip; returns
    each one's position, in order.

    The upsert locks the channels' rows until the caller commits (in name order, whatever the
    order given), so concurrent writers of one channel serialize here: offsets are gapless,
    monotonic, and commit in offset order. ``events`` are queued in the same statement, right
    after the publications and in list order (as ``add_events`` would), which saves round trips
    while the caller holds those locks and whatever it locked before.
    """
    if not publications:
        raise ValueError("nothing to publish")
    now = datetime.now(UTC)
    published_at = now.isoformat()
    bodies = []
    for publication in publications:
        body: dict[str, Any] = {"channel": publication.channel, "data": publication.data, "published_at": published_at}
        if publication.exclude_client:
            body["exclude_client"] = publication.exclude_client
        bodies.append(orjson.dumps(body).decode())
    rows = await session.execute(
        _PUBLISH,
        {
            "channels": [p.channel for p in publications],
            "datas": [orjson.dumps(p.data) for p in publications],
            "publications": bodies,
            "epochs": [new_epoch() for _ in publications],
            "now": now,
            "exchange": PUSH_EXCHANGE,
            **_event_params(events),
        },
    )
    return [StreamPosition(offset=offset, epoch=epoch) for offset, epoch, _ in rows]


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
