"""Per-module infrastructure for the cart's integration tests: each module gets its own database
and vhost (named after the module), so modules never share queues or rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from flashline_service.testing import ThrowawayVhosts

from ..support import PushTap, push_tap


def _module_name(request: pytest.FixtureRequest) -> str:
    return request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, cart_database: Callable[[str], str]) -> str:
    return cart_database(_module_name(request))


@pytest.fixture(scope="module")
def amqp_url(request: pytest.FixtureRequest, throwaway_vhosts: ThrowawayVhosts) -> str:
    return throwaway_vhosts.create(f"cart-{_module_name(request)}")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def tap(amqp_url: str) -> AsyncIterator[PushTap]:
    async with push_tap(amqp_url) as tap:
        yield tap
