"""In-memory adapters for unit tests; ``tests/contract`` holds them to the SQL adapters' behaviour."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from flashline_contracts.publications import StreamPosition
from orders.adapters.repository import (
    CatalogRepository,
    IdempotencyRepository,
    KeyClaim,
    KeyUse,
    OrderRepository,
    StreamRepository,
)
from orders.domain.errors import StreamOutOfStep
from orders.domain.events import DomainEvent, StatusChanged
from orders.domain.model import Order
from orders.domain.pricing import CatalogProduct
from orders.domain.values import Status
from orders.service_layer.integration import summary_channels


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Store:
    """Everything the fakes hold; copied whole for rollbacks."""

    orders: dict[int, Order] = field(default_factory=dict)
    keys: dict[tuple[str, str], KeyUse] = field(default_factory=dict)
    products: dict[int, CatalogProduct] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    next_id: int = 1  # the sequence claims draw order ids from

    def snapshot(self) -> Store:
        return copy.deepcopy(self)

    def restore(self, snapshot: Store) -> None:
        self.__dict__.update(copy.deepcopy(snapshot).__dict__)


def _copy(order: Order) -> Order:
    """What a database read gives: a fresh object, with no pending events."""
    fresh = copy.deepcopy(order)
    fresh.events = []
    return fresh


class FakeOrderRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            self._store.orders[order.id] = _copy(order)

    async def get(self, order_id: int, *, for_update: bool = False) -> Order | None:
        found = self._store.orders.get(order_id)
        return None if found is None else _copy(found)

    async def get_many(self, order_ids: Iterable[int], *, for_update: bool = False) -> list[Order]:
        return [_copy(self._store.orders[i]) for i in sorted(set(order_ids)) if i in self._store.orders]

    async def save_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            self._store.orders[order.id] = _copy(order)

    async def overdue(self, now: datetime, limit: int) -> list[Order]:
        due = [
            o
            for o in self._store.orders.values()
            if o.status is Status.CONFIRMED and o.payment_due_at is not None and o.payment_due_at <= now
        ]
        return [_copy(o) for o in sorted(due, key=lambda o: (o.payment_due_at, o.id))[:limit]]

    async def page(
        self, *, user_id: str | None = None, tenant_id: str | None = None, before: int, limit: int
    ) -> list[Order]:
        mine = [
            o
            for o in self._store.orders.values()
            if o.id < before and (o.user_id == user_id if user_id is not None else o.tenant_id == tenant_id)
        ]
        return [_copy(o) for o in sorted(mine, key=lambda o: -o.id)[:limit]]


class FakeIdempotencyRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, user_id: str, key: str, request_hash: str) -> KeyUse:
        order_id, self._store.next_id = self._store.next_id, self._store.next_id + 1  # drawn either way, as SQL's
        earlier = self._store.keys.get((user_id, key))
        if earlier is not None:
            return earlier
        self._store.keys[(user_id, key)] = KeyUse(request_hash, order_id, earlier=True)  # what later claims see
        return KeyUse(request_hash, order_id, earlier=False)

    async def claim_many(self, claims: Sequence[KeyClaim]) -> list[int | None]:
        uses = [await self.claim(c.user_id, c.key, c.request_hash) for c in claims]
        return [None if use.earlier else use.order_id for use in uses]


class FakeCatalogRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, product: CatalogProduct) -> bool:
        held = self._store.products.get(product.product_id)
        if held is not None and held.changed_at >= product.changed_at:
            return False
        self._store.products[product.product_id] = product
        return True

    async def by_ids(self, ids: Iterable[int]) -> dict[int, CatalogProduct]:
        return {i: self._store.products[i] for i in ids if i in self._store.products}


class FakeStreamRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def position(self, channel: str) -> StreamPosition:
        offset = self._store.offsets.get(channel, 0)
        return StreamPosition(offset=offset, epoch="fake" if offset else "")


class FakeUnitOfWork:
    """Commits record the domain events (what the outbox would get) and advance channel offsets."""

    def __init__(self, clock: FakeClock | None = None, store: Store | None = None) -> None:
        self.store = store or Store()
        self.clock = clock or FakeClock()
        self.orders: OrderRepository = FakeOrderRepository(self.store)
        self.idempotency: IdempotencyRepository = FakeIdempotencyRepository(self.store)
        self.catalog: CatalogRepository = FakeCatalogRepository(self.store)
        self.streams: StreamRepository = FakeStreamRepository(self.store)
        self.committed: list[DomainEvent] = []
        self.published: dict[str, StreamPosition] = {}
        self.commits = 0
        self._pending: list[DomainEvent] = []
        self._before: Store | None = None

    async def __aenter__(self) -> Self:
        self._before = self.store.snapshot()
        self._pending = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._before is not None:  # not committed: roll back
            self.store.restore(self._before)
        self._before = None
        self._pending = []

    def collect(self, *changes: DomainEvent) -> None:
        self._pending.extend(changes)

    async def commit(self) -> None:
        self.published = {}
        for event in self._pending:
            if isinstance(event, StatusChanged):
                self._publish(event)
        self.committed.extend(self._pending)
        self._pending = []
        self.commits += 1
        self._before = self.store.snapshot()

    def _publish(self, event: StatusChanged) -> None:
        order = event.order
        channel = f"order:{order.order_id}"
        self.store.offsets[channel] = self.store.offsets.get(channel, 0) + 1
        if self.store.offsets[channel] != order.version:
            raise StreamOutOfStep(f"{channel} at {self.store.offsets[channel]}, order at {order.version}")
        self.published[channel] = StreamPosition(offset=self.store.offsets[channel], epoch="fake")
        for summary in summary_channels(order):
            self.store.offsets[summary] = self.store.offsets.get(summary, 0) + 1
            self.published[summary] = StreamPosition(offset=self.store.offsets[summary], epoch="fake")

    def statuses(self, order_id: int) -> list[str]:
        """The statuses committed for ``order_id``, in commit order."""
        return [e.order.status for e in self.committed if isinstance(e, StatusChanged) and e.order.order_id == order_id]
