"""Annotated dependencies of the cart routes: unit of work, rules, and the headers carts use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request, status

from cart.domain.model import MAX_ID, Access, CartRules
from cart.service_layer.unit_of_work import UnitOfWork
from flashline_service.auth import OptionalUser

MAX_VERSION_DIGITS = 18  # a bigint


def _unit_of_work(request: Request) -> UnitOfWork:
    factory: Callable[[], UnitOfWork] = request.app.state.unit_of_work
    return factory()


def _rules(request: Request) -> CartRules:
    rules: CartRules = request.app.state.rules
    return rules


CartToken = Annotated[str | None, Header(alias="X-Cart-Token", max_length=256)]
ClientId = Annotated[
    str | None, Header(alias="X-Client-Id", max_length=128, description="the gateway client id of the calling tab")
]


def _access(user: OptionalUser, cart_token: CartToken = None) -> Access:
    return Access(user_id=user.sub if user else None, cart_token=cart_token)


def _if_match(if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> int | None:
    """``5``, ``"5"`` or ``W/"5"`` -> 5; ``*`` (any version) and no header -> None: last write wins."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_VERSION_DIGITS):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail='If-Match must be a cart version: 5 or "5"')
    return int(value)


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
RulesDep = Annotated[CartRules, Depends(_rules)]
AccessDep = Annotated[Access, Depends(_access)]
IfMatchDep = Annotated[int | None, Depends(_if_match)]
CartId = Annotated[str, Path(min_length=1, max_length=64)]
ProductId = Annotated[int, Path(ge=1, le=MAX_ID)]
