"""Reply error codes and disconnect (close) codes of the Centrifugo client protocol, as data.

Ranges the SDKs act on: disconnect 3000-3499 / 4000-4499 reconnect, 3500-3999 / 4500-4999 stop;
unsubscribe push codes below 2500 stay unsubscribed, 2500 and above resubscribe.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """``{"error": {"code": C}}`` in a reply; ``temporary`` ones make the SDK retry."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109
    EXPIRED = 110
    TOO_MANY_REQUESTS = 111
    UNRECOVERABLE_POSITION = 112

    @property
    def message(self) -> str:
        return self.name.lower().replace("_", " ")

    @property
    def temporary(self) -> bool:
        return self in (ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS)


class CloseCode(IntEnum):
    """WebSocket close codes the gateway ends a connection with."""

    NORMAL = 1000
    INVALID_DATA = 1007  # invalid UTF-8 in a text frame: sent by the WebSocket layer itself
    MESSAGE_TOO_BIG = 1009  # oversized frame: sent by the WebSocket layer (websockets' protocol object)
    SHUTDOWN = 3001
    SERVER_ERROR = 3004
    TOKEN_EXPIRED = 3005
    SUBSCRIPTION_EXPIRED = 3006
    SLOW = 3008
    WRITE_ERROR = 3009
    INSUFFICIENT_STATE = 3010
    FORCE_RECONNECT = 3011
    NO_PONG = 3012
    TOO_MANY_REQUESTS = 3013
    INVALID_TOKEN = 3500
    BAD_REQUEST = 3501
    STALE = 3502
    FORCE_DISCONNECT = 3503
    CONNECTION_LIMIT = 3504
    CHANNEL_LIMIT = 3505
    PERMISSION_DENIED = 3507
    TOO_MANY_ERRORS = 3509

    @property
    def reason(self) -> str:
        return self.name.lower().replace("_", " ")

    @property
    def reconnect(self) -> bool:
        return 3000 <= self < 3500 or 4000 <= self < 4500


class UnsubscribeCode(IntEnum):
    """``{"push": {"unsubscribe": {"code": C}}}``: below 2500 stay unsubscribed, else resubscribe."""

    SERVER = 2000
    INSUFFICIENT = 2500
    EXPIRED = 2501
