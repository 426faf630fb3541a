"""``/orders``: customers place and pay, staff advance, owners (or staff) cancel; grants for ``order:{id}``.

Someone else's order is 404 on every route: existence is never revealed to a stranger.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Response, status

from flashline_contracts.channels import order_channel
from orders.domain import commands
from orders.domain.values import MAX_ID
from orders.entrypoints.api.deps import ActorDep, CustomerDep, MinterDep, PlacementsDep, StaffDep, UnitOfWorkDep
from orders.entrypoints.api.schemas import (
    CancelIn,
    GrantOut,
    OrderOut,
    OrderPageOut,
    OrderSummaryOut,
    PlaceOrderIn,
    StatusIn,
)
from orders.service_layer import handlers, views

router = APIRouter(prefix="/orders", tags=["orders"])

MAX_PAGE = 100
MAX_KEY = 200
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def parse_cursor(raw: str | None) -> int:
    """The exclusive upper id bound of a page (newest first)."""
    if raw is None:
        return MAX_ID
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor must be a next_cursor of this list")
    return int(raw)


def page_out(page: views.OrderPage, limit: int) -> OrderPageOut:
    full = len(page.orders) == limit
    return OrderPageOut(
        items=[OrderSummaryOut.of(order) for order in page.orders],
        next_cursor=str(page.orders[-1].id) if full else None,
        stream=page.stream,
    )


def _idempotency_key(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="the Idempotency-Key header is required")
    if len(raw) > MAX_KEY or not raw.isprintable():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"Idempotency-Key must be 1 to {MAX_KEY} printable characters"
        )
    return raw


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def place_order(
    body: PlaceOrderIn,
    actor: CustomerDep,
    uow: UnitOfWorkDep,
    placements: PlacementsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> OrderOut:
    """202: the order is pending until the catalog reserves its stock. A retry with the same key
    and body returns the same order (header ``Idempotent-Replayed: true``)."""
    cmd = commands.PlaceOrder(
        actor=actor,
        idempotency_key=_idempotency_key(idempotency_key),
        items=tuple(item.to_item() for item in body.items),
        cart_id=body.cart_id,
    )
    placed = await placements.place(cmd)
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    elif placed.stream is not None:  # just placed: the order and its channel's position are at hand
        return OrderOut.with_stream(placed.order, placed.stream)
    view = await views.order(uow, placed.order.id, actor)
    return OrderOut.with_stream(view.order, view.stream)


@router.get("")
async def list_orders(
    actor: ActorDep,
    uow: UnitOfWorkDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Cursor = None,
) -> OrderPageOut:
    """The caller's own orders, newest first; ``stream`` is the position of ``user#{id}``."""
    page = await views.own_orders(uow, actor, before=parse_cursor(cursor), limit=limit)
    return page_out(page, limit)


@router.get("/{order_id}")
async def get_order(order_id: OrderId, actor: ActorDep, uow: UnitOfWorkDep) -> OrderOut:
    view = await views.order(uow, order_id, actor)
    return OrderOut.with_stream(view.order, view.stream)


@router.post("/{order_id}/pay")
async def pay_order(order_id: OrderId, actor: ActorDep, uow: UnitOfWorkDep) -> OrderOut:
    """The mock payment provider's callback: only the owner, only a confirmed order."""
    await handlers.pay_order(commands.PayOrder(actor, order_id), uow)
    return await get_order(order_id, actor, uow)


@router.post("/{order_id}/status")
async def advance_order(order_id: OrderId, body: StatusIn, actor: StaffDep, uow: UnitOfWorkDep) -> OrderOut:
    """The warehouse: paid -> packed -> shipped -> delivered, one step at a time."""
    await handlers.advance_order(commands.AdvanceOrder(actor, order_id, body.status), uow)
    return await get_order(order_id, actor, uow)


@router.post("/{order_id}/cancel")
async def cancel_order(
    order_id: OrderId, actor: ActorDep, uow: UnitOfWorkDep, body: Annotated[CancelIn | None, Body()] = None
) -> OrderOut:
    """The owner (until it ships) or staff; the catalog releases the reserved stock."""
    reason = body.reason if body is not None else None
    await handlers.cancel_order(commands.CancelOrder(actor, order_id, reason), uow)
    return await get_order(order_id, actor, uow)


@router.post("/{order_id}/subscription-token")
async def order_grant(order_id: OrderId, actor: ActorDep, uow: UnitOfWorkDep, minter: MinterDep) -> GrantOut:
    """A grant for ``order:{id}`` to whoever may see the order, under their own user id."""
    await views.order(uow, order_id, actor)
    channel = order_channel(order_id)
    token, expires_at = minter.subscription_token(user_id=actor.user_id, channel=channel)
    return GrantOut(channel=channel, token=token, expires_at=expires_at)
