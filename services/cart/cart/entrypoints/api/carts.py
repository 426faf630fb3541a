"""``/carts``: guest carts (``X-Cart-Token``) and users' carts (their token), live on ``cart:{id}``.

Every representation carries ``stream`` and an ``ETag`` of its version; writes take ``If-Match``
(a stale version is 412 with the current cart) and ``X-Client-Id`` (that tab gets no echo).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from cart.domain import commands
from cart.domain.errors import StaleCart
from cart.domain.model import CartRules
from cart.entrypoints.api.deps import (
    AccessDep,
    CartId,
    CartToken,
    ClientId,
    IfMatchDep,
    ProductId,
    RulesDep,
    UnitOfWorkDep,
    etag,
)
from cart.entrypoints.api.schemas import CartCreated, CartOut, QuantityIn, SubscriptionGrant
from cart.service_layer import handlers, views
from cart.service_layer.unit_of_work import UnitOfWork
from cart.service_layer.views import CartView
from flashline_contracts.channels import cart_channel
from flashline_service.auth import CustomerUser, OptionalUser

router = APIRouter(prefix="/carts", tags=["carts"])


def _present(view: CartView, response: Response) -> CartOut:
    response.headers.update(etag(view.cart.version))
    return CartOut.of(view)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CartCreated)
async def create_cart(
    user: OptionalUser, uow: UnitOfWorkDep, rules: RulesDep, response: Response, client_id: ClientId = None
) -> CartCreated:
    """Anonymous: a new guest cart with its ``cart_token``. Customer: their open cart (200 if they had one)."""
    if user is not None and user.role != "customer":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only customers and guests have carts")
    made = await handlers.create_cart(commands.CreateCart(user.sub if user else None, client_id), uow, rules)
    if not made.created:
        response.status_code = status.HTTP_200_OK
    return CartCreated(**_present(made.view, response).model_dump(), cart_token=made.cart_token)


@router.get("/mine")
async def my_cart(user: CustomerUser, uow: UnitOfWorkDep, rules: RulesDep, response: Response) -> CartOut:
    """The signed-in customer's open cart; 404 if they have none yet (``POST /carts`` makes it)."""
    return _present(await views.open_cart_of(uow, user.sub, rules), response)


@router.get("/{cart_id}")
async def get_cart(
    cart_id: CartId, access: AccessDep, uow: UnitOfWorkDep, rules: RulesDep, response: Response
) -> CartOut:
    return _present(await views.cart(uow, cart_id, access, rules), response)


STALE: dict[int | str, dict[str, Any]] = {412: {"description": "stale If-Match: body `cart` is the current cart"}}


@router.put("/{cart_id}/items/{product_id}", response_model=CartOut, responses=STALE)
async def set_item(
    cart_id: CartId,
    product_id: ProductId,
    body: QuantityIn,
    access: AccessDep,
    if_match: IfMatchDep,
    uow: UnitOfWorkDep,
    rules: RulesDep,
    response: Response,
    client_id: ClientId = None,
) -> CartOut | JSONResponse:
    """Set a line's quantity; 0 removes it."""
    command = commands.SetItem(cart_id, product_id, body.quantity, access, if_match, client_id)
    return await _change(command, uow, rules, response)


@router.delete("/{cart_id}/items/{product_id}", response_model=CartOut, responses=STALE)
async def delete_item(
    cart_id: CartId,
    product_id: ProductId,
    access: AccessDep,
    if_match: IfMatchDep,
    uow: UnitOfWorkDep,
    rules: RulesDep,
    response: Response,
    client_id: ClientId = None,
) -> CartOut | JSONResponse:
    """Remove a line (a line that is not there is already removed)."""
    command = commands.SetItem(cart_id, product_id, 0, access, if_match, client_id)
    return await _change(command, uow, rules, response)


async def _change(
    command: commands.SetItem, uow: UnitOfWork, rules: CartRules, response: Response
) -> CartOut | JSONResponse:
    try:
        return _present(await handlers.set_item(command, uow, rules), response)
    except StaleCart as stale:
        # Read after the refusal: the cart as it is now, which the client builds its retry on.
        current = CartOut.of(await views.cart(uow, command.cart_id, command.access, rules))
        body = {"detail": stale.detail, "code": stale.code, "cart": current.model_dump(mode="json")}
        return JSONResponse(body, status_code=status.HTTP_412_PRECONDITION_FAILED, headers=etag(current.version))


@router.post("/{cart_id}/subscription-token")
async def subscription_token(
    cart_id: CartId, access: AccessDep, uow: UnitOfWorkDep, request: Request
) -> SubscriptionGrant:
    """A grant for ``cart:{id}`` at the gateway: for the owner, or for an anonymous connection (guest carts)."""
    subject = await views.grant_subject(uow, cart_id, access)
    channel = cart_channel(cart_id)
    token, expires_at = request.app.state.minter.subscription_token(user_id=subject, channel=channel)
    return SubscriptionGrant(channel=channel, token=token, expires_at=expires_at)


@router.post("/{cart_id}/merge")
async def merge(
    cart_id: CartId,
    user: CustomerUser,
    uow: UnitOfWorkDep,
    rules: RulesDep,
    response: Response,
    cart_token: CartToken = None,
    client_id: ClientId = None,
) -> CartOut:
    """Fold guest cart ``cart_id`` (its ``X-Cart-Token``) into the customer's cart; the guest cart closes."""
    command = commands.MergeGuestCart(cart_id, user.sub, cart_token, client_id)
    return _present(await handlers.merge_guest_cart(command, uow, rules), response)
