"""In-memory adapters for unit tests; ``tests/contract`` holds them to the SQL adapters' behaviour."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from catalog.domain import events
from catalog.domain.errors import DuplicateSku, StreamOutOfStep
from catalog.domain.model import NewProduct, Product, StockLevel
from catalog.domain.values import Line


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

    products: dict[int, Product] = field(default_factory=dict)
    reservations: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    outcomes: dict[int, str] = field(default_factory=dict)
    next_id: int = 1

    def snapshot(self) -> Store:
        return copy.deepcopy(self)

    def restore(self, snapshot: Store) -> None:
        self.__dict__.update(copy.deepcopy(snapshot).__dict__)


class FakeProductRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, new: NewProduct) -> Product:
        if any(p.sku == new.sku for p in self._store.products.values()):
            raise DuplicateSku(new.sku)
        product = Product(
            id=self._store.next_id,
            sku=new.sku,
            name=new.name,
            price_cents=new.price_cents,
            currency=new.currency,
            available=new.available,
            version=1,
            sale_starts_at=new.sale_starts_at,
            sale_announced=new.sale_announced,
        )
        self._store.next_id += 1
        self._store.products[product.id] = product
        return product

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None:
        return self._store.products.get(product_id)

    async def by_ids(self, ids: Sequence[int]) -> list[Product]:
        return [self._store.products[i] for i in sorted(set(ids)) if i in self._store.products]

    async def page(self, *, after: int, limit: int) -> list[Product]:
        return [p for i, p in sorted(self._store.products.items()) if i > after][:limit]

    async def save(self, product: Product) -> None:
        self._store.products[product.id] = product

    async def lock_levels(self, ids: Sequence[int]) -> dict[int, StockLevel]:
        return await self.levels(sorted(set(ids)))

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        for level in levels:
            product = self._store.products[level.product_id]
            self._put(replace(product, available=level.available, version=level.version))

    async def replenish(self, product_id: int, quantity: int) -> StockLevel | None:
        product = self._store.products.get(product_id)
        if product is None:
            return None
        return self._put(replace(product, available=product.available + quantity, version=product.version + 1))

    async def levels(self, ids: Sequence[int]) -> dict[int, StockLevel]:
        return {i: self._store.products[i].stock for i in ids if i in self._store.products}

    async def announce_due(self, now: datetime, limit: int) -> list[StockLevel]:
        due = [
            p
            for _, p in sorted(self._store.products.items())
            if not p.sale_announced and p.sale_starts_at is not None and p.sale_starts_at <= now
        ][:limit]
        return [self._put(replace(p, sale_announced=True, version=p.version + 1)) for p in due]

    async def next_sale_start(self) -> datetime | None:
        starts = [
            p.sale_starts_at
            for p in self._store.products.values()
            if not p.sale_announced and p.sale_starts_at is not None
        ]
        return min(starts, default=None)

    def _put(self, product: Product) -> StockLevel:
        self._store.products[product.id] = product
        return product.stock


class FakeReservationRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim_orders(self, order_ids: Sequence[int]) -> set[int]:
        claimed = {order_id for order_id in order_ids if order_id not in self._store.outcomes}
        self._store.outcomes.update(dict.fromkeys(claimed, "reserved"))
        return claimed

    async def reject_orders(self, order_ids: Sequence[int]) -> None:
        self._store.outcomes.update(dict.fromkeys(order_ids, "rejected"))

    async def add(self, reserved: Sequence[tuple[int, Sequence[Line]]]) -> None:
        for order_id, lines in reserved:
            for line in lines:
                self._store.reservations[(order_id, line.product_id)] = (line.quantity, "reserved")

    async def release_order(self, order_id: int) -> tuple[Line, ...]:
        state = self._store.outcomes.setdefault(order_id, "released")
        if state == "reserved":
            self._store.outcomes[order_id] = "released"
        released = await self.reserved(order_id)
        for line in released:
            self._store.reservations[(order_id, line.product_id)] = (line.quantity, "released")
        return released

    async def reserved(self, order_id: int) -> tuple[Line, ...]:
        return tuple(
            Line(product_id, quantity)
            for (order, product_id), (quantity, state) in sorted(self._store.reservations.items())
            if order == order_id and state == "reserved"
        )


class FakeUnitOfWork:
    """Commits record the domain events (what the outbox would get) and check stream offsets."""

    def __init__(self, clock: FakeClock | None = None, store: Store | None = None) -> None:
        self.store = store or Store()
        self.products = FakeProductRepository(self.store)
        self.reservations = FakeReservationRepository(self.store)
        self.clock = clock or FakeClock()
        self.committed: list[events.DomainEvent] = []
        self.offsets: dict[int, int] = {}
        self._pending: list[events.DomainEvent] = []
        self._committed_state = self.store.snapshot()

    async def __aenter__(self) -> Self:
        self._committed_state = self.store.snapshot()
        self._pending = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.store.restore(self._committed_state)
        self._pending = []

    def collect(self, *changes: events.DomainEvent) -> None:
        self._pending.extend(changes)

    async def commit(self) -> None:
        for event in self._pending:  # the real writer's check: each publication takes the next offset
            if isinstance(event, events.StockLevelChanged):
                offset = self.offsets.get(event.product_id, 0) + 1
                if offset != event.version:
                    raise StreamOutOfStep(f"offset {offset} != version {event.version}")
                self.offsets[event.product_id] = offset
        self.committed.extend(self._pending)
        self._pending = []
        self._committed_state = self.store.snapshot()

    def events_of(self, kind: type) -> list[events.DomainEvent]:
        return [e for e in self.committed if isinstance(e, kind)]
