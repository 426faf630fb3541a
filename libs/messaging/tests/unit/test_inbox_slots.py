"""``idempotent(..., slots=)``: the handlers sharing the slots never hold more transactions at once."""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType
from typing import Any

from flashline_contracts.envelope import EventEnvelope
from flashline_contracts.events import StockChanged
from flashline_messaging.inbox import idempotent


class _Result:
    def scalars(self) -> list[uuid.UUID]:
        return [uuid.uuid4()]  # the claim always succeeds


class _Session:
    """Just enough of an AsyncSession for ``idempotent``: counts the sessions open at once."""

    open = 0
    most = 0

    async def __aenter__(self) -> _Session:
        _Session.open += 1
        _Session.most = max(_Session.most, _Session.open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        _Session.open -= 1

    def begin(self) -> _Session.Transaction:
        return _Session.Transaction()

    async def execute(self, statement: Any) -> _Result:
        return _Result()

    class Transaction:
        async def __aenter__(self) -> None:
            return None

        async def __aexit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None:
            return None


async def test_handlers_sharing_slots_hold_at_most_that_many_transactions() -> None:
    slots = asyncio.Semaphore(3)
    done: list[int] = []

    async def handle(event: StockChanged, envelope: EventEnvelope, session: Any) -> None:
        await asyncio.sleep(0.01)
        done.append(event.version)

    first = idempotent(_Session, "a", handle, slots=slots)  # type: ignore[arg-type]
    second = idempotent(_Session, "b", handle, slots=slots)  # type: ignore[arg-type]
    envelopes = [
        EventEnvelope.wrap(
            StockChanged(product_id=1, available=1, status="low", version=v), producer="t", aggregate_id=1
        )
        for v in range(1, 21)
    ]
    runs = [(first if i % 2 else second)(e.open(StockChanged), e) for i, e in enumerate(envelopes)]
    await asyncio.gather(*runs)
    assert sorted(done) == list(range(1, 21))
    assert _Session.most == 3
