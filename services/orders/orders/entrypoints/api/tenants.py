"""``/tenants/{tenant_id}``: a company account's shared order desk, for its members only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from flashline_contracts.channels import tenant_channel
from orders.entrypoints.api.deps import ActorDep, MinterDep, UnitOfWorkDep
from orders.entrypoints.api.orders import MAX_PAGE, Cursor, page_out, parse_cursor
from orders.entrypoints.api.schemas import GrantOut, OrderPageOut
from orders.service_layer import views

router = APIRouter(prefix="/tenants", tags=["tenants"])

TenantId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/{tenant_id}/orders")
async def tenant_orders(
    tenant_id: TenantId,
    actor: ActorDep,
    uow: UnitOfWorkDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Cursor = None,
) -> OrderPageOut:
    """The company's orders, newest first; ``stream`` is the position of ``tenant:{id}``."""
    page = await views.tenant_orders(uow, actor, tenant_id, before=parse_cursor(cursor), limit=limit)
    return page_out(page, limit)


@router.post("/{tenant_id}/subscription-token")
async def tenant_grant(tenant_id: TenantId, actor: ActorDep, minter: MinterDep) -> GrantOut:
    """A grant for ``tenant:{id}``: only when the caller's token names that tenant."""
    views.check_member(actor, tenant_id)
    channel = tenant_channel(tenant_id)
    token, expires_at = minter.subscription_token(user_id=actor.user_id, channel=channel)
    return GrantOut(channel=channel, token=token, expires_at=expires_at)
