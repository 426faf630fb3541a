"""The unit of work: repositories over one transaction, plus the domain events it collects.

``commit`` hands the collected events to the outbox writer first, so changes, outbox rows and
channel publications commit together. A unit of work either owns its transaction (API, jobs) or
joins one a caller already opened (the idempotent consumer, whose inbox claim shares it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.adapters.repository import (
    ProductRepository,
    ReservationRepository,
    SqlProductRepository,
    SqlReservationRepository,
)
from catalog.domain.events import DomainEvent
from catalog.service_layer.integration import OutboxWriter
from flashline_service.unit_of_work import SqlUnitOfWorkBase

Clock = Callable[[], datetime]


class UnitOfWork(Protocol):
    products: ProductRepository
    reservations: ReservationRepository
    clock: Clock

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back whatever was not committed."""

    def collect(self, *changes: DomainEvent) -> None:
        """Queue domain events for the outbox; they are written by ``commit``."""

    async def commit(self) -> None: ...


class SqlUnitOfWork(SqlUnitOfWorkBase[DomainEvent]):
    def __init__(
        self,
        writer: OutboxWriter,
        clock: Clock,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        super().__init__(sessions=sessions, session=session)
        self._writer = writer
        self.clock = clock

    def _bind(self, session: AsyncSession) -> None:
        self.products: ProductRepository = SqlProductRepository(session)
        self.reservations: ReservationRepository = SqlReservationRepository(session)

    async def _write(self, session: AsyncSession, changes: list[DomainEvent]) -> None:
        await self._writer.write(session, changes)
