"""This pod's registry: connected sessions, and channel -> local subscribers.

A channel is *active* locally from its first subscriber to its last. Subscribers of a channel
are a dict keyed by client id, so ``exclude_client`` is one comparison and iteration is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from push_gateway.protocol.session import Session


class Hub:
    def __init__(self) -> None:
        self.channels: dict[str, dict[str, Session]] = {}
        self.sessions: dict[str, Session] = {}
        self.subscriptions = 0

    def add_session(self, session: Session) -> None:
        self.sessions[session.client_id] = session

    def remove_session(self, session: Session) -> None:
        self.sessions.pop(session.client_id, None)

    def subscribe(self, channel: str, session: Session) -> bool:
        """Add a subscriber; True when the channel just became active on this pod."""
        subs = self.channels.get(channel)
        first = subs is None
        if subs is None:
            subs = self.channels[channel] = {}
        if session.client_id not in subs:
            subs[session.client_id] = session
            self.subscriptions += 1
        return first

    def unsubscribe(self, channel: str, session: Session) -> bool:
        """Remove a subscriber; True when the channel has no local subscriber left."""
        subs = self.channels.get(channel)
        if subs is None or subs.pop(session.client_id, None) is None:
            return False
        self.subscriptions -= 1
        if not subs:
            del self.channels[channel]
            return True
        return False

    def subscribers(self, channel: str) -> dict[str, Session] | None:
        return self.channels.get(channel)

    def sessions_of(self, user: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.user == user]

    def clients(self, channel: str) -> Iterator[Session]:
        return iter((self.channels.get(channel) or {}).values())
