"""FastAPI dependencies for user tokens: ``CurrentUser``, ``OptionalUser``, ``StaffUser``.

Each service builds one ``UserAuth`` at startup (from its settings) and stores it on app state.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flashline_auth import AuthError, KeySet, TokenExpired, TokenVerifier
from flashline_contracts.tokens import UserClaims

log = logging.getLogger("flashline.auth")

_bearer = HTTPBearer(auto_error=False)


class UserAuth:
    """Verifies user tokens issued by trusted identity keys (keys with no grant namespaces)."""

    # Clients send the same token on every call until it expires: each distinct verified token is
    # checked once (signature and all) and then looked up, until its exp (see TokenVerifier).
    CACHE_SIZE = 4096

    def __init__(self, keys: KeySet, *, audience: str) -> None:
        identity_keys = KeySet.of(k for k in keys.keys.values() if not k.namespaces)
        self._verifier = TokenVerifier(identity_keys, audience=audience, cache_size=self.CACHE_SIZE)

    def verify(self, token: str) -> UserClaims:
        return self._verifier.verify(token, UserClaims)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def optional_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> UserClaims | None:
    if credentials is None:
        return None
    auth: UserAuth = request.app.state.user_auth
    try:
        return auth.verify(credentials.credentials)
    except TokenExpired as exc:
        raise _unauthorized("token expired") from exc
    except AuthError as exc:
        log.info("refused user token: %s", exc)
        raise _unauthorized("invalid token") from exc


async def current_user(user: Annotated[UserClaims | None, Depends(optional_user)]) -> UserClaims:
    if user is None or not user.sub:
        raise _unauthorized("authentication required")
    return user


async def staff_user(user: Annotated[UserClaims, Depends(current_user)]) -> UserClaims:
    if user.role != "staff":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="staff only")
    return user


async def customer_user(user: Annotated[UserClaims, Depends(current_user)]) -> UserClaims:
    if user.role != "customer":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="customers only")
    return user


OptionalUser = Annotated[UserClaims | None, Depends(optional_user)]
CurrentUser = Annotated[UserClaims, Depends(current_user)]
StaffUser = Annotated[UserClaims, Depends(staff_user)]
CustomerUser = Annotated[UserClaims, Depends(customer_user)]
