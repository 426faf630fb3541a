"""Domain events -> what leaves the service: ``cart:{id}`` publications (the cart emits no bus events).

Written through the outbox in the unit of work's transaction, so a publication commits with the
change or not at all. The pure mapping is separate from the writing, so it is tested without a
database.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from cart.domain import events
from cart.domain.errors import StreamOutOfStep
from cart.domain.model import PricedCart
from flashline_contracts.channels import cart_channel
from flashline_contracts.publications import CartLine, CartState, CartTotals, StreamPosition
from flashline_messaging import outbox


def cart_state(cart: PricedCart, *, origin_client: str | None = None) -> CartState:
    """The data of ``cart:{id}``, which is also the body of every REST cart representation."""
    return CartState(
        cart_id=cart.cart_id,
        version=cart.version,
        status=cart.status,
        items=tuple(
            CartLine(
                product_id=line.product_id,
                name=line.name,
                unit_price_cents=line.unit_price_cents,
                quantity=line.quantity,
                line_total_cents=line.line_total_cents,
                available=line.available,
                short=line.short,
            )
            for line in cart.lines
        ),
        totals=CartTotals(items=cart.items, subtotal_cents=cart.subtotal_cents, currency=cart.currency),
        origin_client=origin_client,
    )


async def write(session: AsyncSession, changes: Sequence[events.DomainEvent]) -> dict[str, StreamPosition]:
    """Publish each changed cart in ``session``'s transaction; returns each publication's position by cart id."""
    positions: dict[str, StreamPosition] = {}
    for change in changes:
        cart = change.cart
        data = cart_state(cart, origin_client=change.origin_client).model_dump(mode="json")
        position = await outbox.publish_to_channel(
            session, cart_channel(cart.cart_id), data, exclude_client=change.origin_client
        )
        if position.offset != cart.version:
            raise StreamOutOfStep(f"cart:{cart.cart_id} is at offset {position.offset}, its cart at {cart.version}")
        positions[cart.cart_id] = position
    return positions
