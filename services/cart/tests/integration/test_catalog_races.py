"""Catalog changes and cart writes that race on real Postgres: no cart may keep showing a stale line.

Each test stops one transaction at the point where the race used to bite, lets the other run, then
lets the first finish. Whatever the interleaving, once both have committed no open cart shows a
name, price or ``short`` flag its product's stored listing and level contradict, and the last
publication of the cart says so.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cart.domain import commands
from cart.domain.model import Access, CartRules, Listing, StockLevel
from cart.service_layer import handlers
from cart.service_layer.unit_of_work import SqlUnitOfWork
from flashline_service.testing import Pause

RULES = CartRules(max_quantity_per_line=10, currency="EUR")
PRODUCT_IDS = itertools.count(1)


class PausedUnitOfWork(SqlUnitOfWork):
    """Stops the first time ``repository.method`` returns, until the test lets it go on."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], repository: str, method: str) -> None:
        super().__init__(sessions=sessions)
        self.pause = Pause()
        self._target = (repository, method)

    def _bind(self, session: AsyncSession) -> None:
        super()._bind(session)
        repository = getattr(self, self._target[0])
        original: Callable[..., Awaitable[Any]] = getattr(repository, self._target[1])

        async def paused(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            await self.pause.hold()
            return result

        setattr(repository, self._target[1], paused)


@pytest.fixture(scope="module")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def sold_out_product(sessions: async_sessionmaker[AsyncSession]) -> int:
    product_id = next(PRODUCT_IDS)
    listing = Listing(product_id, "Hoodie", 4_000, "EUR")
    await handlers.record_product(
        commands.RecordProduct(listing, datetime.now(UTC)), SqlUnitOfWork(sessions=sessions), RULES
    )
    await restock(sessions, product_id, 0, version=1)
    return product_id


async def restock(
    sessions: async_sessionmaker[AsyncSession], product_id: int, available: int, *, version: int
) -> list[handlers.CartView]:
    level = StockLevel(product_id, available, "in_stock" if available else "out", version)
    return await handlers.record_stock(commands.RecordStock(level), SqlUnitOfWork(sessions=sessions), RULES)


async def guest_cart(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, Access]:
    made = await handlers.create_cart(commands.CreateCart(None, None), SqlUnitOfWork(sessions=sessions), RULES)
    assert made.cart_token is not None
    return made.view.cart.cart_id, Access(cart_token=made.cart_token)


async def outdated(sessions: async_sessionmaker[AsyncSession], product_id: int) -> list[str]:
    async with SqlUnitOfWork(sessions=sessions) as uow:
        carts = await uow.carts.lock_misflagged(product_id, 1000) + await uow.carts.lock_mispriced(product_id, 1000)
        return [cart.id for cart in carts]


def short_flags(view: handlers.CartView) -> list[bool]:
    return [line.short for line in view.cart.lines]


async def test_a_level_stored_while_a_put_is_uncommitted_still_corrects_its_line(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    product_id = await sold_out_product(sessions)
    cart_id, access = await guest_cart(sessions)
    put_uow = PausedUnitOfWork(sessions, "carts", "save")  # the line is written short, not yet committed
    put = asyncio.create_task(handlers.set_item(commands.SetItem(cart_id, product_id, 2, access), put_uow, RULES))
    await put_uow.pause.reached.wait()

    restocked = asyncio.create_task(restock(sessions, product_id, 5, version=2))
    await put_uow.pause.waits_then_release(restocked, "the level must wait for the transaction that read the old one")

    assert short_flags(await put) == [True]  # true when it committed: nothing was available
    [republished] = await restocked
    assert republished.cart.cart_id == cart_id and short_flags(republished) == [False]
    assert await outdated(sessions, product_id) == []


async def test_a_put_that_starts_while_a_level_is_uncommitted_sees_the_new_level(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    product_id = await sold_out_product(sessions)
    cart_id, access = await guest_cart(sessions)
    stock_uow = PausedUnitOfWork(sessions, "catalog", "record_stock")  # stored, not yet committed
    level = StockLevel(product_id, 5, "in_stock", 2)
    restocked = asyncio.create_task(handlers.record_stock(commands.RecordStock(level), stock_uow, RULES))
    await stock_uow.pause.reached.wait()

    put = asyncio.create_task(
        handlers.set_item(commands.SetItem(cart_id, product_id, 2, access), SqlUnitOfWork(sessions=sessions), RULES)
    )
    await stock_uow.pause.waits_then_release(put, "the put must wait for the level being stored")

    assert short_flags(await put) == [False]
    assert await restocked == []  # the put already showed the new level: nothing to correct
    assert await outdated(sessions, product_id) == []


async def test_a_redelivered_level_finishes_a_republish_a_crash_cut_short(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    product_id = await sold_out_product(sessions)
    cart_id, access = await guest_cart(sessions)
    await handlers.set_item(commands.SetItem(cart_id, product_id, 2, access), SqlUnitOfWork(sessions=sessions), RULES)
    async with SqlUnitOfWork(sessions=sessions) as uow:  # the first transaction only: then the crash
        assert await uow.catalog.record_stock(StockLevel(product_id, 5, "in_stock", 2))
        await uow.commit()
    assert await outdated(sessions, product_id) == [cart_id]

    [republished] = await restock(sessions, product_id, 5, version=2)  # the redelivery
    assert short_flags(republished) == [False]
    assert await outdated(sessions, product_id) == []


async def test_a_price_stored_while_a_put_is_uncommitted_still_reaches_its_cart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    product_id = await sold_out_product(sessions)
    cart_id, access = await guest_cart(sessions)
    put_uow = PausedUnitOfWork(sessions, "carts", "save")  # the line is written at the old price
    put = asyncio.create_task(handlers.set_item(commands.SetItem(cart_id, product_id, 1, access), put_uow, RULES))
    await put_uow.pause.reached.wait()

    repriced = commands.RecordProduct(Listing(product_id, "Hoodie", 3_500, "EUR"), datetime.now(UTC))
    recorded = asyncio.create_task(handlers.record_product(repriced, SqlUnitOfWork(sessions=sessions), RULES))
    await put_uow.pause.waits_then_release(recorded, "the listing must wait for the transaction that read the old one")

    assert [line.unit_price_cents for line in (await put).cart.lines] == [4_000]
    [republished] = await recorded
    assert republished.cart.cart_id == cart_id
    assert [line.unit_price_cents for line in republished.cart.lines] == [3_500]
    assert await outdated(sessions, product_id) == []
