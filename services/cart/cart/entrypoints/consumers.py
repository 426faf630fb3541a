"""Bus subscriptions: catalog and orders events -> commands -> handlers, each in an idempotent transaction.

The inbox claim and the handler's unit of work share one transaction, so a redelivered event has
no second effect and a crash between them loses nothing. Listings and stock levels need no claim:
each is stored only over an older one, so redelivered and reordered events never regress them,
and the republish step that follows only corrects what is still wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cart.domain import commands
from cart.domain.model import CartRules, Listing, StockLevel
from cart.service_layer import handlers
from cart.service_layer.unit_of_work import UnitOfWork
from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import OrderStatusChanged, ProductChanged, StockChanged
from flashline_messaging.bus import EventBus
from flashline_messaging.inbox import idempotent

JoinedUnitOfWork = Callable[[AsyncSession], UnitOfWork]
OwnUnitOfWork = Callable[[], UnitOfWork]


def register(
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    unit_of_work: JoinedUnitOfWork,
    own_unit_of_work: OwnUnitOfWork,
    rules: CartRules,
    *,
    consumer: str,
    max_transactions: int,
) -> None:
    """Subscribe the cart's handlers; ``unit_of_work`` builds one joining the inbox's session,
    ``own_unit_of_work`` one with transactions of its own (listings and stock levels: no claim).

    At most ``max_transactions`` of them hold a database transaction at once (the pool's size):
    the surplus of the prefetch waits here, not on the pool's checkout timeout.
    """
    slots = asyncio.Semaphore(max_transactions)

    async def on_product(event: ProductChanged, envelope: EventEnvelope) -> None:
        listing = Listing(event.product_id, event.name, event.price_cents, event.currency)
        command = commands.RecordProduct(listing, envelope.occurred_at)
        async with slots:
            await handlers.record_product(command, own_unit_of_work(), rules)

    async def on_stock(event: StockChanged, envelope: EventEnvelope) -> None:
        level = StockLevel(event.product_id, event.available, event.status, event.version)
        async with slots:
            await handlers.record_stock(commands.RecordStock(level), own_unit_of_work(), rules)

    async def on_confirmed(event: OrderStatusChanged, envelope: EventEnvelope, session: AsyncSession) -> None:
        assert event.cart_id is not None
        command = commands.EmptyOrderedCart(event.cart_id, event.user_id)
        await handlers.empty_ordered_cart(command, unit_of_work(session), rules)

    confirmed = idempotent(sessions, f"{consumer}.orders", on_confirmed, slots=slots)

    async def on_status(event: OrderStatusChanged, envelope: EventEnvelope) -> None:
        # Only a confirmation from a cart concerns the cart (the binding below); anything else
        # arriving anyway (an older producer's plain routing key) is not even claimed.
        if event.status == "confirmed" and event.cart_id:
            await confirmed(event, envelope)

    bus.subscribe(ProductChanged, on_product)
    bus.subscribe(StockChanged, on_stock)
    bus.subscribe(OrderStatusChanged, on_status, binding="OrderStatusChanged.v1.confirmed.cart")
