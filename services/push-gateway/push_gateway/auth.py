"""Who may connect and who may subscribe to what: the gateway's only authorization logic.

Connection tokens must come from a user-token issuer (a trusted key with no grantable
namespaces); subscription grants from an issuer whose key lists the channel's namespace. A
grant's ``sub`` must equal the connection's user and its ``channel`` the channel asked, exactly.
Every refusal is logged with its reason; the client only sees the protocol code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flashline_auth import TokenExpired, TokenInvalid, TokenVerifier
from flashline_contracts.channels import ChannelName
from flashline_contracts.tokens import SubscriptionClaims, UserClaims
from push_gateway.namespaces import Namespace, Namespaces, SubscribePolicy
from push_gateway.protocol.codes import ErrorCode

log = logging.getLogger("push_gateway.auth")


class Denied(Exception):
    """A refused connect or subscribe; ``code`` is what the client is told."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated side of a connection. ``user == ""`` is anonymous."""

    user: str = ""
    expires_at: int = 0  # unix seconds, 0 = never
    tenant: str | None = None
    channels: tuple[str, ...] = ()
    info: dict[str, Any] | None = field(default=None)

    @property
    def anonymous(self) -> bool:
        return self.user == ""


ANONYMOUS = Principal()


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission to be subscribed to one channel, until ``expires_at`` (0 = for the connection)."""

    namespace: Namespace
    expires_at: int = 0


class Authorizer:
    def __init__(self, verifier: TokenVerifier, namespaces: Namespaces, *, allow_anonymous: bool = True) -> None:
        self._verifier = verifier
        self._namespaces = namespaces
        self._allow_anonymous = allow_anonymous

    @property
    def namespaces(self) -> Namespaces:
        return self._namespaces

    def connect(self, token: str) -> Principal:
        """The principal a connection token stands for; raises Denied (101 or 109)."""
        if not token:
            if not self._allow_anonymous:
                raise Denied(ErrorCode.UNAUTHORIZED, "anonymous connections are not allowed")
            return ANONYMOUS
        try:
            raw, key = self._verifier.decode(token)
            if key.namespaces:
                raise TokenInvalid(f"issuer {key.issuer!r} mints grants, not user tokens")
            claims = UserClaims.model_validate(raw)
        except TokenExpired as exc:
            raise Denied(ErrorCode.TOKEN_EXPIRED, str(exc)) from exc
        except (TokenInvalid, ValidationError) as exc:
            raise Denied(ErrorCode.UNAUTHORIZED, f"connection token refused: {exc}") from exc
        if not claims.sub:
            raise Denied(ErrorCode.UNAUTHORIZED, "connection token without a user")
        return Principal(
            user=claims.sub,
            expires_at=int(claims.exp),
            tenant=claims.tenant,
            channels=tuple(claims.channels),
            info=claims.info,
        )

    def refresh(self, principal: Principal, token: str) -> Principal:
        """A new principal from a refresh token: it must name the same user."""
        renewed = self.connect(token)
        if renewed.user != principal.user:
            raise Denied(ErrorCode.UNAUTHORIZED, "refresh token names another user")
        return renewed

    def namespace_of(self, channel: str) -> tuple[ChannelName, Namespace]:
        try:
            name = ChannelName.parse(channel)
        except ValueError as exc:
            raise Denied(ErrorCode.UNKNOWN_CHANNEL, str(exc)) from exc
        ns = self._namespaces.get(name.namespace)
        if ns is None:
            raise Denied(ErrorCode.UNKNOWN_CHANNEL, f"unknown namespace {name.namespace!r}")
        return name, ns

    def subscribe(self, principal: Principal, channel: str, token: str = "") -> Grant:
        """Permission for ``principal`` on ``channel``; raises Denied (102, 103, 109)."""
        name, ns = self.namespace_of(channel)
        if principal.anonymous and not ns.allow_anonymous:
            raise Denied(ErrorCode.PERMISSION_DENIED, f"namespace {ns.name!r} needs a signed-in user")
        policy = ns.subscribe
        if policy is SubscribePolicy.PUBLIC:
            return Grant(ns)
        if policy is SubscribePolicy.USER_LIMITED:
            if name.user is not None and not principal.anonymous and name.user == principal.user:
                return Grant(ns)
            raise Denied(ErrorCode.PERMISSION_DENIED, f"{channel!r} is limited to another user")
        if policy is SubscribePolicy.TENANT_CLAIM and principal.tenant and principal.tenant == name.name:
            return Grant(ns)
        if not token:
            raise Denied(ErrorCode.PERMISSION_DENIED, f"{channel!r} needs a subscription token")
        return Grant(ns, self._grant_expiry(principal, channel, ns, token))

    def sub_refresh(self, principal: Principal, channel: str, token: str) -> int:
        """New expiry of a subscription grant (same checks as subscribe with a token)."""
        _, ns = self.namespace_of(channel)
        return self._grant_expiry(principal, channel, ns, token)

    def _grant_expiry(self, principal: Principal, channel: str, ns: Namespace, token: str) -> int:
        try:
            raw, key = self._verifier.decode(token)
            claims = SubscriptionClaims.model_validate(raw)
        except TokenExpired as exc:
            raise Denied(ErrorCode.TOKEN_EXPIRED, str(exc)) from exc
        except (TokenInvalid, ValidationError) as exc:
            raise Denied(ErrorCode.PERMISSION_DENIED, f"subscription token refused: {exc}") from exc
        if ns.name not in key.namespaces:
            raise Denied(ErrorCode.PERMISSION_DENIED, f"issuer {key.issuer!r} may not grant {ns.name!r}")
        if claims.channel != channel:
            raise Denied(ErrorCode.PERMISSION_DENIED, f"grant is for {claims.channel!r}, not {channel!r}")
        if claims.sub != principal.user:
            raise Denied(ErrorCode.PERMISSION_DENIED, "grant is for another user")
        return int(claims.exp)
