"""In-memory adapters for unit tests; ``tests/contract`` holds them to the SQL adapters' behaviour."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from cart.adapters.repository import CartRepository, CatalogRepository
from cart.domain import events
from cart.domain.errors import StreamOutOfStep
from cart.domain.model import Cart, Listing, Offer, PricedCart, StockLevel, is_short
from cart.service_layer.integration import cart_state
from flashline_contracts.publications import StreamPosition


@dataclass
class Store:
    """Everything the fakes hold; copied whole for rollbacks."""

    carts: dict[str, Cart] = field(default_factory=dict)
    shown: dict[tuple[str, int], tuple[bool, str, int]] = field(default_factory=dict)  # short, name, price
    listings: dict[int, tuple[Listing, datetime]] = field(default_factory=dict)
    levels: dict[int, StockLevel] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)
    changed_at: dict[str, datetime] = field(default_factory=dict)  # carts.updated_at

    def snapshot(self) -> Store:
        return copy.deepcopy(self)

    def restore(self, snapshot: Store) -> None:
        self.__dict__.update(copy.deepcopy(snapshot).__dict__)


class FakeCartRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, cart: Cart) -> bool:
        if cart.owner_id is not None and self._open_of(cart.owner_id) is not None:
            return False
        self._store.carts[cart.id] = Cart(cart.id, cart.owner_id, cart.token_hash, cart.status, version=0)
        self._store.changed_at[cart.id] = datetime.now(UTC)
        return True

    async def get(self, cart_id: str, *, for_update: bool = False) -> Cart | None:
        return self._copy(cart_id) if cart_id in self._store.carts else None

    async def open_cart_of(self, owner_id: str, *, for_update: bool = False) -> Cart | None:
        found = self._open_of(owner_id)
        return None if found is None else self._copy(found.id)

    async def lock(self, cart_ids: Sequence[str]) -> dict[str, Cart]:
        return {i: self._copy(i) for i in sorted(set(cart_ids)) if i in self._store.carts}

    async def lock_misflagged(self, product_id: int, limit: int) -> list[Cart]:
        level = self._store.levels.get(product_id)
        available = level.available if level else 0
        return self._lock_open(
            product_id, limit, lambda cart, shown: shown[0] != is_short(cart.lines[product_id], available)
        )

    async def lock_mispriced(self, product_id: int, limit: int) -> list[Cart]:
        listing = self._store.listings[product_id][0] if product_id in self._store.listings else None
        return self._lock_open(
            product_id,
            limit,
            lambda cart, shown: listing is not None and shown[1:] != (listing.name, listing.price_cents),
        )

    async def delete_idle_guest_carts(self, idle_since: datetime, limit: int) -> list[str]:
        idle = sorted(
            (at, cart_id)
            for cart_id, at in self._store.changed_at.items()
            if self._store.carts[cart_id].owner_id is None and at < idle_since
        )
        ids = [cart_id for _, cart_id in idle[:limit]]
        for cart_id in ids:
            del self._store.carts[cart_id], self._store.changed_at[cart_id]
            self._store.epochs.pop(cart_id, None)
            for key in [key for key in self._store.shown if key[0] == cart_id]:
                del self._store.shown[key]
        return ids

    def _lock_open(
        self, product_id: int, limit: int, outdated: Callable[[Cart, tuple[bool, str, int]], bool]
    ) -> list[Cart]:
        found = [
            cart
            for cart in sorted(self._store.carts.values(), key=lambda c: c.id)
            if cart.is_open and product_id in cart.lines and outdated(cart, self._store.shown[(cart.id, product_id)])
        ]
        return [self._copy(cart.id) for cart in found[:limit]]

    async def save(self, cart: Cart, shown: PricedCart) -> None:
        stored = self._store.carts[cart.id]
        self._store.changed_at[cart.id] = datetime.now(UTC)
        for product_id in set(stored.lines) - set(cart.lines):
            del self._store.shown[(cart.id, product_id)]
        lines = {line.product_id: line for line in shown.lines}
        for product_id in cart.lines:
            line = lines[product_id]
            self._store.shown[(cart.id, product_id)] = (line.short, line.name, line.unit_price_cents)
        stored.status, stored.version = cart.status, cart.version
        # An update keeps a line's place; a new line goes last (as the SQL adapter's position does).
        stored.lines = {p: cart.lines[p] for p in stored.lines if p in cart.lines} | {
            p: q for p, q in cart.lines.items() if p not in stored.lines
        }

    def _open_of(self, owner_id: str) -> Cart | None:
        return next((c for c in self._store.carts.values() if c.owner_id == owner_id and c.is_open), None)

    def _copy(self, cart_id: str) -> Cart:
        cart = copy.deepcopy(self._store.carts[cart_id])
        cart.epoch = self._store.epochs.get(cart_id, "")
        return cart


class FakeCatalogRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record_listing(self, listing: Listing, changed_at: datetime) -> bool:
        stored = self._store.listings.get(listing.product_id)
        if stored is not None and stored[1] > changed_at:
            return False
        self._store.listings[listing.product_id] = (listing, changed_at)
        return True

    async def record_stock(self, level: StockLevel) -> bool:
        stored = self._store.levels.get(level.product_id)
        if stored is not None and stored.version >= level.version:
            return False
        self._store.levels[level.product_id] = level
        return True

    async def hold_products(self, product_ids: Sequence[int]) -> None:
        """Nothing runs concurrently with a fake's transaction."""

    async def offers(self, product_ids: Sequence[int]) -> dict[int, Offer]:
        found = {}
        for product_id in product_ids:
            if product_id in self._store.listings:
                listing = self._store.listings[product_id][0]
                level = self._store.levels.get(product_id)
                available = level.available if level else 0
                found[product_id] = Offer(product_id, listing.name, listing.price_cents, listing.currency, available)
        return found


@dataclass(frozen=True, slots=True)
class Publication:
    """What the outbox would have been given for ``cart:{id}``."""

    channel: str
    offset: int
    data: dict[str, object]
    exclude_client: str | None


class FakeUnitOfWork:
    """Commits record the publications (what the outbox would get) and check their offsets."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.carts: CartRepository = FakeCartRepository(self.store)
        self.catalog: CatalogRepository = FakeCatalogRepository(self.store)
        self.publications: list[Publication] = []
        self.published: dict[str, StreamPosition] = {}
        self.commits = 0
        self._offsets: dict[str, int] = {}
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
        self.published = {}
        for change in self._pending:  # the real writer's check: each publication takes the next offset
            channel = f"cart:{change.cart.cart_id}"
            offset = self._offsets.get(channel, 0) + 1
            if offset != change.cart.version:
                raise StreamOutOfStep(f"offset {offset} != version {change.cart.version}")
            self._offsets[channel] = offset
            epoch = self.store.epochs.setdefault(change.cart.cart_id, f"epoch-{change.cart.cart_id[:4]}")
            data = cart_state(change.cart, origin_client=change.origin_client).model_dump(mode="json")
            self.publications.append(Publication(channel, offset, data, change.origin_client))
            self.published[change.cart.cart_id] = StreamPosition(offset=offset, epoch=epoch)
        self._pending = []
        self.commits += 1
        self._committed_state = self.store.snapshot()

    def on(self, cart_id: str) -> list[Publication]:
        return [p for p in self.publications if p.channel == f"cart:{cart_id}"]
