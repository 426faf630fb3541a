"""Which failures are retried for as long as it takes, and which count towards dead-lettering."""

from __future__ import annotations

import sqlalchemy.exc

from flashline_messaging.errors import PermanentError, TransientError, is_transient


def test_a_pool_checkout_timeout_is_transient() -> None:
    # Not a builtin TimeoutError: every connection was busy for the pool's timeout. Retrying later
    # works; counting it as a failed attempt would dead-letter good messages under load.
    exc = sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out")
    assert not isinstance(exc, TimeoutError)
    assert is_transient(exc)


def test_environment_failures_are_transient_and_bugs_are_not() -> None:
    assert is_transient(TransientError("broker down"))
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionResetError())
    try:
        try:
            raise ConnectionRefusedError
        except ConnectionRefusedError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("bad payload"))
    assert not is_transient(PermanentError("never"))
    assert not is_transient(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
