"""Asking a channel's producer where it stands, for channels this pod has not seen since its horizon.

``GET {position_url}/internal/channels/{channel}`` -> 200 ``{"channel", "offset", "epoch", "data"}``
or 404 (never published). Concurrent asks for one channel are coalesced by the node; this module
only performs the request, with a short timeout.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from push_gateway.node import Position

log = logging.getLogger("push_gateway.positions")


class PositionUnavailable(Exception):
    """The producer could not be asked or gave a useless answer: retry later (error 100)."""


class PositionClient:
    def __init__(self, *, timeout: float, api_key: str) -> None:
        self._http = httpx.AsyncClient(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})

    async def fetch(self, base_url: str, channel: str) -> Position | None:
        """The channel's position, or None when the producer never published on it."""
        url = f"{base_url.rstrip('/')}/internal/channels/{quote(channel, safe='')}"
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise PositionUnavailable(f"{url}: {exc!r}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PositionUnavailable(f"{url}: HTTP {response.status_code}")
        try:
            doc = response.json()
            offset, epoch = doc["offset"], doc["epoch"]
            if doc.get("channel", channel) != channel or not isinstance(offset, int) or not isinstance(epoch, str):
                raise ValueError("bad fields")
        except (ValueError, KeyError, TypeError) as exc:
            raise PositionUnavailable(f"{url}: malformed answer: {exc}") from exc
        return Position(epoch=epoch, offset=offset, data=doc.get("data"))

    async def close(self) -> None:
        await self._http.aclose()
