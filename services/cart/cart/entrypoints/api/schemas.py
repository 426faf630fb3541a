"""Request and response bodies of the cart API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cart.service_layer.integration import cart_state
from cart.service_layer.views import CartView
from flashline_contracts.channels import cart_channel
from flashline_contracts.publications import CartState, StreamPosition


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=0, strict=True, description="0 removes the line; the maximum is configured per line")


class CartOut(CartState):
    """The cart as ``cart:{id}`` publishes it, plus where that channel stands: subscribe from ``stream``."""

    stream: StreamPosition
    channel: str

    @classmethod
    def of(cls, view: CartView) -> CartOut:
        state = cart_state(view.cart, origin_client=view.origin_client)
        return cls(**state.model_dump(), stream=view.stream, channel=cart_channel(view.cart.cart_id))


class CartCreated(CartOut):
    cart_token: str | None = Field(
        None, description="guest carts only: send it as X-Cart-Token; it is shown once and never again"
    )


class SubscriptionGrant(BaseModel):
    channel: str
    token: str
    expires_at: datetime
