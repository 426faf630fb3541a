"""``GET /internal/channels/{channel}``: the gateway's lookup of a channel it has no history of.

Returns the channel's position and latest publication data, a full-state snapshot, so it is for
the gateway alone: the caller must present the shared internal key (and network policy admits
only the gateway). Anyone else gets 401 and learns nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from flashline_messaging.outbox import latest_publication

router = APIRouter(tags=["internal"])


@router.get("/internal/channels/{channel:path}", include_in_schema=False)
async def channel_position(channel: str, request: Request) -> dict[str, Any]:
    expected = f"Bearer {request.app.state.settings.internal_api_key}"
    if not secrets.compare_digest(request.headers.get("authorization", "").encode(), expected.encode()):
        raise HTTPException(401, detail="internal endpoint", headers={"WWW-Authenticate": "Bearer"})
    async with request.app.state.db.sessions() as session:
        found = await latest_publication(session, channel)
    if found is None:
        raise HTTPException(404, detail="no publication on this channel")
    return found
