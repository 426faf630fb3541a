"""The part of every service's unit of work that is not about its domain.

A unit of work either owns a transaction (API requests, background jobs) or joins one (bus
handlers, where the inbox already opened it to claim the event id). It collects the domain
events the aggregates raise and, at commit, hands them to the service's ``_write`` (integration
events and channel publications into the outbox) before committing, so the state change and
everything it announces commit together.
"""

from __future__ import annotations

from types import TracebackType
from typing import Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Change = TypeVar("Change")


class SqlUnitOfWorkBase(Generic[Change]):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        if (sessions is None) == (session is None):
            raise ValueError("give either sessions (own a transaction) or session (join one)")
        self._sessions = sessions
        self._joined = session
        self._events: list[Change] = []

    def _bind(self, session: AsyncSession) -> None:
        """Create the service's repositories on ``session``."""
        raise NotImplementedError

    async def _write(self, session: AsyncSession, changes: list[Change]) -> None:
        """Put what ``changes`` announce into the outbox, in ``session``'s transaction."""
        raise NotImplementedError

    @property
    def session(self) -> AsyncSession:
        return self._session

    async def __aenter__(self) -> Self:
        if self._joined is not None:
            self._session = self._joined
        else:
            assert self._sessions is not None
            self._session = self._sessions()
        self._bind(self._session)
        self._events = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._events = []
        if self._joined is None:  # a joined transaction is its owner's to end
            await self._session.rollback()
            await self._session.close()

    def collect(self, *changes: Change) -> None:
        """Queue domain events; ``commit`` writes them."""
        self._events.extend(changes)

    async def commit(self) -> None:
        changes, self._events = self._events, []
        await self._write(self._session, changes)
        if self._joined is None:
            await self._session.commit()
