"""Annotated dependencies of the catalog routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from catalog.domain.model import Product, stock_status
from catalog.entrypoints.api.schemas import ProductOut
from catalog.service_layer.unit_of_work import UnitOfWork


def _unit_of_work(request: Request) -> UnitOfWork:
    factory: Callable[[], UnitOfWork] = request.app.state.unit_of_work
    return factory()


class Presenter:
    """Turns products into responses, with the status as of now and the configured threshold."""

    def __init__(self, request: Request) -> None:
        self._clock = request.app.state.clock
        self._low = request.app.state.settings.low_stock_threshold

    def __call__(self, product: Product) -> ProductOut:
        status = stock_status(product.available, product.sale_starts_at, now=self._clock(), low_threshold=self._low)
        return ProductOut.of(product, status)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
PresenterDep = Annotated[Presenter, Depends(Presenter)]
