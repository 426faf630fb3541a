"""Annotated dependencies of the orders routes: units of work, placements and the acting user.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
a thread hand-off per dependency per request for what is a few attribute reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from flashline_auth import TokenMinter
from flashline_contracts.tokens import UserClaims
from flashline_service.auth import CurrentUser, CustomerUser, StaffUser
from orders.domain.values import Actor
from orders.service_layer.placements import Placements
from orders.service_layer.unit_of_work import UnitOfWork


async def _unit_of_work(request: Request) -> UnitOfWork:
    factory: Callable[[], UnitOfWork] = request.app.state.unit_of_work
    return factory()


async def _placements(request: Request) -> Placements:
    return request.app.state.placements


async def _minter(request: Request) -> TokenMinter:
    return request.app.state.minter


def actor_of(claims: UserClaims) -> Actor:
    return Actor(user_id=claims.sub, is_staff=claims.role == "staff", tenant_id=claims.tenant)


async def _anyone(user: CurrentUser) -> Actor:
    return actor_of(user)


async def _customer(user: CustomerUser) -> Actor:
    return actor_of(user)


async def _staff(user: StaffUser) -> Actor:
    return actor_of(user)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
PlacementsDep = Annotated[Placements, Depends(_placements)]
MinterDep = Annotated[TokenMinter, Depends(_minter)]
ActorDep = Annotated[Actor, Depends(_anyone)]
CustomerDep = Annotated[Actor, Depends(_customer)]
StaffDep = Annotated[Actor, Depends(_staff)]
