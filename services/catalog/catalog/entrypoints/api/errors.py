"""Edge mapping: domain errors and invalid requests become JSON with a readable ``detail``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from catalog.domain import errors

STATUS = {
    errors.ProductNotFound: 404,
    errors.DuplicateSku: 409,
    errors.InvalidProduct: 422,
    errors.InvalidQuantity: 422,
}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.CatalogError)
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=status)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in problems)
    return JSONResponse({"detail": reasons or "invalid request", "errors": jsonable_encoder(problems)}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.CatalogError, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
