"""The order aggregate and its status machine. Plain Python: it appends events, never publishes.

    pending -> confirmed -> paid -> packed -> shipped -> delivered
    pending -> rejected          confirmed -> expired
    pending | confirmed | paid | packed -> cancelled

Every transition bumps ``version`` by one (the offset of the order's channel) and appends a
history entry; a transition not in ``TRANSITIONS`` raises ``IllegalTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orders.domain.errors import IllegalTransition, InvalidOrder, NotAllowed
from orders.domain.events import DomainEvent, OrderCreated, OrderSnapshot, StatusChanged
from orders.domain.values import Actor, Line, Status

S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.REJECTED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PAID, S.EXPIRED, S.CANCELLED}),
    S.PAID: frozenset({S.PACKED, S.CANCELLED}),
    S.PACKED: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}
WAREHOUSE_STEPS = frozenset({S.PACKED, S.SHIPPED, S.DELIVERED})
EXPIRED_REASON = "payment window elapsed"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int
    status: Status
    at: datetime
    reason: str | None = None


@dataclass(eq=False)
class Order:
    id: int
    user_id: str
    tenant_id: str | None
    cart_id: str | None
    lines: tuple[Line, ...]
    currency: str
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    payment_due_at: datetime | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list, repr=False)

    @classmethod
    def place(
        cls, *, order_id: int, actor: Actor, cart_id: str | None, lines: tuple[Line, ...], currency: str, at: datetime
    ) -> Order:
        if not lines:
            raise InvalidOrder("an order needs at least one line")
        order = cls(
            id=order_id,
            user_id=actor.user_id,
            tenant_id=actor.tenant_id,
            cart_id=cart_id,
            lines=lines,
            currency=currency,
            status=S.PENDING,
            version=1,
            created_at=at,
            updated_at=at,
            history=[HistoryEntry(1, S.PENDING, at)],
        )
        order.events += [OrderCreated(order.snapshot()), StatusChanged(order.snapshot(), previous=None)]
        return order

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    def visible_to(self, actor: Actor) -> bool:
        """Owner, staff, or a member of the order's company account."""
        return (
            actor.is_staff
            or actor.user_id == self.user_id
            or (actor.tenant_id is not None and actor.tenant_id == self.tenant_id)
        )

    def is_overdue(self, now: datetime) -> bool:
        return self.status is S.CONFIRMED and self.payment_due_at is not None and now >= self.payment_due_at

    def confirm(self, at: datetime, payment_window: timedelta) -> None:
        self._move(S.CONFIRMED, at)
        self.payment_due_at = at + payment_window

    def reject(self, reason: str, at: datetime) -> None:
        self._move(S.REJECTED, at, reason)

    def pay(self, actor: Actor, at: datetime) -> None:
        if actor.user_id != self.user_id:
            raise NotAllowed("only the customer who placed the order can pay it")
        if self.is_overdue(at):
            raise IllegalTransition(self.id, self.status, S.PAID, f"the payment window of order {self.id} has closed")
        self._move(S.PAID, at)

    def advance(self, actor: Actor, status: Status, at: datetime) -> None:
        if not actor.is_staff:
            raise NotAllowed("only staff can advance an order")
        if status not in WAREHOUSE_STEPS:
            raise InvalidOrder("the warehouse can set packed, shipped or delivered")
        self._move(status, at)

    def cancel(self, actor: Actor, at: datetime, reason: str | None = None) -> None:
        if actor.user_id != self.user_id and not actor.is_staff:
            raise NotAllowed("only the customer who placed the order, or staff, can cancel it")
        default = "cancelled by staff" if actor.user_id != self.user_id else "cancelled by the customer"
        self._move(S.CANCELLED, at, reason or default)

    def expire(self, at: datetime) -> None:
        self._move(S.EXPIRED, at, EXPIRED_REASON)

    def _move(self, to: Status, at: datetime, reason: str | None = None) -> None:
        if to not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.id, self.status, to)
        previous = self.status
        self.status, self.version, self.updated_at, self.reason = to, self.version + 1, at, reason
        self.history.append(HistoryEntry(self.version, to, at, reason))
        self.events.append(StatusChanged(self.snapshot(), previous=previous))

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            order_id=self.id,
            user_id=self.user_id,
            tenant_id=self.tenant_id,
            cart_id=self.cart_id,
            status=self.status,
            version=self.version,
            lines=self.lines,
            total_cents=self.total_cents,
            currency=self.currency,
            updated_at=self.updated_at,
            reason=self.reason,
        )
