"""The unit of work: repositories over one transaction, plus the domain events it collects.

``commit`` hands the collected events to the outbox writer first, so the order, its history, the
outbox rows and the channel publications commit together. A unit of work either owns its
transaction (API, sweeper) or joins one a caller already opened (the idempotent consumer, whose
inbox claim shares it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flashline_contracts.publications import StreamPosition
from flashline_service.unit_of_work import SqlUnitOfWorkBase
from orders.adapters.repository import (
    CatalogRepository,
    IdempotencyRepository,
    OrderRepository,
    SqlCatalogRepository,
    SqlIdempotencyRepository,
    SqlOrderRepository,
    SqlStreamRepository,
    StreamRepository,
)
from orders.domain.events import DomainEvent
from orders.service_layer.integration import OutboxWriter

Clock = Callable[[], datetime]


class UnitOfWork(Protocol):
    orders: OrderRepository
    idempotency: IdempotencyRepository
    catalog: CatalogRepository
    streams: StreamRepository
    # The channels the last commit published to, at the offsets it gave them (empty before).
    published: dict[str, StreamPosition]

    @property
    def clock(self) -> Clock:
        """The time every change of this unit is stamped with."""

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
        self.published: dict[str, StreamPosition] = {}

    def _bind(self, session: AsyncSession) -> None:
        self.orders: OrderRepository = SqlOrderRepository(session)
        self.idempotency: IdempotencyRepository = SqlIdempotencyRepository(session)
        self.catalog: CatalogRepository = SqlCatalogRepository(session)
        self.streams: StreamRepository = SqlStreamRepository(session)
        self.published = {}

    async def _write(self, session: AsyncSession, changes: list[DomainEvent]) -> None:
        self.published = await self._writer.write(session, changes)
