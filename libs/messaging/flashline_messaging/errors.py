"""How a handler failure is treated: retried (transient) or dead-lettered (deterministic)."""

from __future__ import annotations


class TransientError(Exception):
    """Raise from a handler when trying again later may succeed (a dependency is down)."""


class PermanentError(Exception):
    """Raise from a handler when the message can never be handled: it is dead-lettered now."""


_TRANSIENT_NAMES = {
    # asyncpg / psycopg connection and concurrency failures, matched by name to avoid imports
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "InterfaceError",
    "SerializationError",
    "DeadlockDetectedError",
    "QueryCanceledError",
    "AdminShutdownError",
    "CrashShutdownError",
    "PostgresConnectionError",
    "InternalClientError",
    # sqlalchemy.exc.TimeoutError: no pooled connection came free within the pool's timeout
    "TimeoutError",
}


def is_transient(exc: BaseException) -> bool:
    """True for failures of the environment (network, database availability, lock conflicts)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TransientError | OSError | TimeoutError | ConnectionError):
            return True
        if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(current).__mro__):
            return True
        if getattr(current, "connection_invalidated", False):
            return True
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return False
