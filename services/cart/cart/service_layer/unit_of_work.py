"""The unit of work: repositories over one transaction, plus the domain events it collects.

``commit`` hands the collected events to the outbox writer first, so changes and channel
publications commit together. A unit of work either owns its transaction (API) or joins one a
caller already opened (the idempotent consumer, whose inbox claim shares it).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cart.adapters.repository import CartRepository, CatalogRepository, SqlCartRepository, SqlCatalogRepository
from cart.domain.events import DomainEvent
from cart.service_layer import integration
from flashline_contracts.publications import StreamPosition
from flashline_service.unit_of_work import SqlUnitOfWorkBase


class UnitOfWork(Protocol):
    carts: CartRepository
    catalog: CatalogRepository
    published: dict[str, StreamPosition]
    """Stream positions taken by the last commit's publications, by cart id."""

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
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        super().__init__(sessions=sessions, session=session)
        self.published: dict[str, StreamPosition] = {}

    def _bind(self, session: AsyncSession) -> None:
        self.carts: CartRepository = SqlCartRepository(session)
        self.catalog: CatalogRepository = SqlCatalogRepository(session)

    async def _write(self, session: AsyncSession, changes: list[DomainEvent]) -> None:
        self.published = await integration.write(session, changes)
