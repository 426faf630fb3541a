"""The status machine, transition by transition, and the order's access rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.errors import IllegalTransition, InvalidOrder, NotAllowed
from orders.domain.events import OrderCreated, StatusChanged
from orders.domain.model import Order
from orders.domain.values import Actor, Line, Status

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
OWNER = Actor("alice", tenant_id="acme")
STAFF = Actor("sam", is_staff=True)
COLLEAGUE = Actor("carl", tenant_id="acme")
STRANGER = Actor("mallory", tenant_id="evil")
S = Status

# Written out independently of the model's table: every legal (from, to) pair of the issue.
LEGAL = {
    (S.PENDING, S.CONFIRMED),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.CONFIRMED, S.PAID),
    (S.CONFIRMED, S.EXPIRED),
    (S.CONFIRMED, S.CANCELLED),
    (S.PAID, S.PACKED),
    (S.PAID, S.CANCELLED),
    (S.PACKED, S.SHIPPED),
    (S.PACKED, S.CANCELLED),
    (S.SHIPPED, S.DELIVERED),
}


def order_in(status: Status, *, due: datetime | None = None) -> Order:
    order = Order(
        id=7,
        user_id=OWNER.user_id,
        tenant_id="acme",
        cart_id="c-1",
        lines=(Line(1, 2, 500), Line(2, 1, 250)),
        currency="EUR",
        status=status,
        version=3,
        created_at=NOW,
        updated_at=NOW,
        payment_due_at=due or (NOW + timedelta(minutes=15) if status is S.CONFIRMED else None),
    )
    return order


def attempt(order: Order, to: Status, at: datetime) -> None:
    """Drive ``order`` towards ``to`` through the one method that leads there."""
    match to:
        case S.CONFIRMED:
            order.confirm(at, timedelta(minutes=15))
        case S.REJECTED:
            order.reject("insufficient_stock", at)
        case S.PAID:
            order.pay(OWNER, at)
        case S.PACKED | S.SHIPPED | S.DELIVERED:
            order.advance(STAFF, to, at)
        case S.CANCELLED:
            order.cancel(OWNER, at)
        case S.EXPIRED:
            order.expire(at)


TARGETS = [s for s in Status if s is not S.PENDING]  # nothing ever goes back to pending


@pytest.mark.parametrize(("start", "to"), list(itertools.product(Status, TARGETS)), ids=lambda s: s.value)
def test_every_transition_is_legal_exactly_when_the_table_says(start: Status, to: Status) -> None:
    order = order_in(start)
    at = NOW + timedelta(seconds=1)
    if (start, to) in LEGAL:
        attempt(order, to, at)
        assert (order.status, order.version, order.updated_at) == (to, 4, at)
        assert order.history[-1].status == to and order.history[-1].version == 4
        event = order.events[-1]
        assert isinstance(event, StatusChanged)
        assert (event.previous, event.order.status, event.order.version) == (start, to, 4)
    else:
        with pytest.raises(IllegalTransition) as raised:
            attempt(order, to, at)
        assert raised.value.extra() == {"status": start.value}
        assert (order.status, order.version, order.events) == (start, 3, [])


def test_placing_starts_pending_at_version_one_with_two_events() -> None:
    order = Order.place(order_id=9, actor=OWNER, cart_id=None, lines=(Line(1, 3, 400),), currency="EUR", at=NOW)
    assert (order.status, order.version, order.total_cents, order.tenant_id) == (S.PENDING, 1, 1200, "acme")
    assert [type(e) for e in order.events] == [OrderCreated, StatusChanged]
    assert order.events[1].previous is None  # type: ignore[union-attr]
    assert [(h.version, h.status) for h in order.history] == [(1, S.PENDING)]
    with pytest.raises(InvalidOrder):
        Order.place(order_id=10, actor=OWNER, cart_id=None, lines=(), currency="EUR", at=NOW)


def test_rejection_and_expiry_carry_a_reason_and_confirmation_sets_the_due_time() -> None:
    rejected = order_in(S.PENDING)
    rejected.reject("insufficient_stock", NOW)
    assert (rejected.reason, rejected.history[-1].reason) == ("insufficient_stock", "insufficient_stock")
    confirmed = order_in(S.PENDING)
    confirmed.confirm(NOW, timedelta(seconds=90))
    assert confirmed.payment_due_at == NOW + timedelta(seconds=90) and confirmed.reason is None
    confirmed.expire(NOW + timedelta(seconds=91))
    assert confirmed.reason == "payment window elapsed"


def test_only_the_owner_pays_and_only_within_the_window() -> None:
    with pytest.raises(NotAllowed):
        order_in(S.CONFIRMED).pay(STAFF, NOW)
    with pytest.raises(NotAllowed):
        order_in(S.CONFIRMED).pay(COLLEAGUE, NOW)
    late = order_in(S.CONFIRMED, due=NOW)
    assert late.is_overdue(NOW)
    with pytest.raises(IllegalTransition):
        late.pay(OWNER, NOW)
    assert late.status is S.CONFIRMED


def test_only_staff_advances_and_only_to_warehouse_steps() -> None:
    with pytest.raises(NotAllowed):
        order_in(S.PAID).advance(OWNER, S.PACKED, NOW)
    for wrong in (S.CONFIRMED, S.CANCELLED, S.EXPIRED):
        with pytest.raises(InvalidOrder):
            order_in(S.PAID).advance(STAFF, wrong, NOW)


def test_owner_or_staff_cancel_with_a_reason_colleagues_cannot() -> None:
    with pytest.raises(NotAllowed):
        order_in(S.PENDING).cancel(COLLEAGUE, NOW)
    by_staff = order_in(S.PACKED)
    by_staff.cancel(STAFF, NOW)
    assert by_staff.reason == "cancelled by staff"
    by_owner = order_in(S.CONFIRMED)
    by_owner.cancel(OWNER, NOW, "changed my mind")
    assert by_owner.reason == "changed my mind"


@pytest.mark.parametrize(
    ("actor", "visible"),
    [(OWNER, True), (STAFF, True), (COLLEAGUE, True), (STRANGER, False), (Actor("nobody"), False)],
)
def test_visibility(actor: Actor, visible: bool) -> None:
    assert order_in(S.PENDING).visible_to(actor) is visible


def test_a_tenantless_order_is_not_visible_to_tenantless_strangers() -> None:
    order = order_in(S.PENDING)
    order.tenant_id = None
    assert not order.visible_to(Actor("bob"))
    assert not order.visible_to(COLLEAGUE)
