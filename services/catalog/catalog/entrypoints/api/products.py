"""``/products``: public reads, staff writes. Every representation carries its stock stream position."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from catalog.domain import commands
from catalog.domain.model import MAX_ID
from catalog.entrypoints.api.deps import PresenterDep, UnitOfWorkDep
from catalog.entrypoints.api.schemas import ProductCreate, ProductOut, ProductPage, ProductUpdate, RestockRequest
from catalog.service_layer import handlers, views
from flashline_service.auth import StaffUser

router = APIRouter(prefix="/products", tags=["products"])

MAX_PAGE = 100
ProductId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _unprocessable(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=reason)


def _parse_ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and 0 < int(p) <= MAX_ID for p in parts):
        raise _unprocessable("ids must be comma-separated positive product ids, e.g. ids=1,2,3")
    if len(parts) > MAX_PAGE:
        raise _unprocessable(f"at most {MAX_PAGE} ids per request")
    return [int(p) for p in parts]


def _parse_cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise _unprocessable("cursor must be a next_cursor value returned by this endpoint")
    return int(raw)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_product(
    body: ProductCreate, staff: StaffUser, uow: UnitOfWorkDep, present: PresenterDep
) -> ProductOut:
    created = await handlers.create_product(commands.CreateProduct(**body.model_dump()), uow)
    return present(await views.product(uow, created.id))


@router.get("")
async def list_products(
    uow: UnitOfWorkDep,
    present: PresenterDep,
    ids: Annotated[str | None, Query(description="comma-separated ids; unknown ids are left out")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ProductPage:
    if ids is not None:
        if cursor is not None:
            raise _unprocessable("ids and cursor cannot be combined")
        return ProductPage(items=[present(p) for p in await views.products_by_ids(uow, _parse_ids(ids))])
    found = await views.page(uow, after=_parse_cursor(cursor), limit=limit)
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return ProductPage(items=[present(p) for p in found], next_cursor=next_cursor)


@router.get("/{product_id}")
async def get_product(product_id: ProductId, uow: UnitOfWorkDep, present: PresenterDep) -> ProductOut:
    return present(await views.product(uow, product_id))


@router.put("/{product_id}")
async def update_product(
    product_id: ProductId, body: ProductUpdate, staff: StaffUser, uow: UnitOfWorkDep, present: PresenterDep
) -> ProductOut:
    command = commands.UpdateProduct(
        product_id=product_id,
        name=body.name,
        price_cents=body.price_cents,
        sale_starts_at=body.sale_starts_at,
        change_sale_start="sale_starts_at" in body.model_fields_set,
    )
    await handlers.update_product(command, uow)
    return present(await views.product(uow, product_id))


@router.post("/{product_id}/restock")
async def restock(
    product_id: ProductId, body: RestockRequest, staff: StaffUser, uow: UnitOfWorkDep, present: PresenterDep
) -> ProductOut:
    await handlers.restock(commands.Restock(product_id, body.quantity), uow)
    return present(await views.product(uow, product_id))
