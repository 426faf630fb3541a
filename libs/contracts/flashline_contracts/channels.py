"""Channel names: the client-facing contract between producers, the gateway and clients.

A channel is ``namespace:rest`` (``stock:7``) or a user-limited ``namespace#user`` (``user#42``),
following Centrifugo's conventions. Each channel has exactly one producing service.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_SEPARATOR = ":"
USER_BOUNDARY = "#"

STOCK = "stock"
ORDER = "order"
CART = "cart"
USER = "user"
TENANT = "tenant"


def stock_channel(product_id: int | str) -> str:
    return f"{STOCK}:{product_id}"


def order_channel(order_id: int | str) -> str:
    return f"{ORDER}:{order_id}"


def cart_channel(cart_id: str) -> str:
    return f"{CART}:{cart_id}"


def user_channel(user_id: str) -> str:
    return f"{USER}{USER_BOUNDARY}{user_id}"


def tenant_channel(tenant_id: str) -> str:
    return f"{TENANT}:{tenant_id}"


@dataclass(frozen=True, slots=True)
class ChannelName:
    """A parsed channel: its namespace, the rest, and the user it is limited to (if any)."""

    namespace: str
    name: str
    user: str | None = None

    @classmethod
    def parse(cls, channel: str) -> ChannelName:
        """Split a channel name; raises ValueError for an empty or malformed one."""
        if not channel or any(c.isspace() for c in channel):
            raise ValueError(f"invalid channel name {channel!r}")
        sep = channel.find(NAMESPACE_SEPARATOR)
        hash_pos = channel.find(USER_BOUNDARY)
        if hash_pos != -1 and (sep == -1 or hash_pos < sep):
            namespace, user = channel[:hash_pos], channel[hash_pos + 1 :]
            if not namespace or not user:
                raise ValueError(f"invalid user channel {channel!r}")
            return cls(namespace=namespace, name=user, user=user)
        if sep <= 0 or sep == len(channel) - 1:
            raise ValueError(f"channel {channel!r} has no namespace")
        return cls(namespace=channel[:sep], name=channel[sep + 1 :])
