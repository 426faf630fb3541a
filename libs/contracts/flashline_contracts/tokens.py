"""JWT claim sets: user (connection) tokens from the identity provider, subscription grants.

Field meanings follow the Centrifugo client protocol (PROTOCOL.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from flashline_contracts.base import Contract

Role = Literal["customer", "staff"]


class UserClaims(Contract):
    """A user access token: authenticates REST calls and is the gateway's connection token.

    ``sub`` is the user id (``""`` only for anonymous connections, which carry no token at all);
    ``tenant`` is the company account for B2B users; ``channels`` asks the gateway for
    server-side subscriptions at connect.
    """

    sub: str
    iss: str
    aud: str | list[str]
    exp: int
    iat: int
    nbf: int | None = None
    jti: str | None = None
    role: Role = "customer"
    tenant: str | None = None
    name: str | None = None
    info: dict[str, Any] | None = None
    channels: list[str] = Field(default_factory=list)


class SubscriptionClaims(Contract):
    """A grant for one channel minted by the channel's producer.

    ``sub`` must equal the connection's user (``""`` for a guest's cart on an anonymous
    connection) and ``channel`` the channel asked for, exactly.
    """

    sub: str
    channel: str
    iss: str
    aud: str | list[str]
    exp: int
    iat: int
    nbf: int | None = None
    jti: str | None = None
    info: dict[str, Any] | None = None
