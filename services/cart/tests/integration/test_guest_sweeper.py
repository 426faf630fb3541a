"""The guest-cart sweeper on real Postgres: idle guest carts go with their lines and channel position."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from cart.adapters.tables import cart_items, carts
from cart.domain import commands
from cart.domain.model import CartRules
from cart.entrypoints.background import IdleGuestCartSweeper
from cart.service_layer import handlers
from cart.service_layer.unit_of_work import SqlUnitOfWork
from flashline_contracts.channels import cart_channel
from flashline_messaging.schema import channel_streams

RULES = CartRules(max_quantity_per_line=10, currency="EUR")


async def test_idle_guest_carts_are_swept_a_batch_per_tick(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    def unit_of_work() -> SqlUnitOfWork:
        return SqlUnitOfWork(sessions=sessions)

    made = [await handlers.create_cart(commands.CreateCart(None), unit_of_work(), RULES) for _ in range(3)]
    idle = [m.view.cart.cart_id for m in made[:2]]
    fresh = made[2].view.cart.cart_id
    mine = (await handlers.create_cart(commands.CreateCart("sweeper-user"), unit_of_work(), RULES)).view.cart.cart_id
    async with engine.begin() as conn:
        ago = sa.func.now() - timedelta(days=31)
        await conn.execute(sa.update(carts).where(carts.c.id.in_([*idle, mine])).values(updated_at=ago))

    sweeper = IdleGuestCartSweeper(unit_of_work, ttl=timedelta(days=30), interval=300.0, batch_size=1)
    assert await sweeper.tick() == 0.0  # a full batch: there may be more
    assert await sweeper.tick() == 0.0
    assert await sweeper.tick() == 300.0

    async with engine.connect() as conn:
        left = set((await conn.execute(sa.select(carts.c.id))).scalars())
        streams = set((await conn.execute(sa.select(channel_streams.c.channel))).scalars())
        lines = (
            await conn.execute(sa.select(sa.func.count()).select_from(cart_items).where(cart_items.c.cart_id.in_(idle)))
        ).scalar()
    assert not set(idle) & left and {fresh, mine} <= left
    assert not {cart_channel(cart_id) for cart_id in idle} & streams
    assert cart_channel(fresh) in streams and lines == 0
