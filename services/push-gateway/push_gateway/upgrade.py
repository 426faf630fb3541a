"""The plain WebSocket upgrade request, answered without websockets' general HTTP machinery.

websockets reads a request through generator coroutines, a case-insensitive multidict and the
header grammar parsers, and formats a fresh Date for every response: about a tenth of a JWT
connect's CPU at the gateway. Nearly every client sends the same request in one segment:
``GET /connection/websocket`` over HTTP/1.1 with one Connection, Upgrade, key and version header.
``plain_upgrade`` recognizes exactly that and builds the 101 websockets would send, byte for byte.
It never refuses: anything else (probes, split or odd requests, subprotocols, bodies, obs-text)
returns None and goes to websockets as before, so every refusal stays websockets' own.
Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
import time
from dataclasses import dataclass

WEBSOCKET_PATH = "/connection/websocket"
MAX_HEAD_BYTES = 4096  # well under websockets' per-line limit (8 KiB), and enough for browsers' usual headers
MAX_HEADERS = 128  # websockets' limit
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455: the key's accept hash suffix

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"  # RFC 9110 token, as websockets checks header names
_TOKEN_LIST = re.compile(_TOKEN + rb"(?:[ \t]*,[ \t]*" + _TOKEN + rb")*")  # "a, b": no empty items
# The request line for the WebSocket path (the target ASCII without spaces, as websockets takes it),
# then header lines of a token, a colon and visible ASCII, space or tab, each after a CRLF: obs-text,
# bare CR or LF and malformed names are websockets' to judge.
_HEAD = re.compile(
    rb"GET " + re.escape(WEBSOCKET_PATH.encode()) + rb"(?:\?[\x21-\x7e]*)? HTTP/1\.1"
    rb"(?:\r\n" + _TOKEN + rb":[\x09\x20-\x7e]*)*"
)
# Headers that make a request not plain: a body, or a subprotocol offer (websockets validates its syntax).
_NOT_PLAIN = frozenset({b"content-length", b"transfer-encoding", b"sec-websocket-protocol"})
_AT_MOST_ONCE = frozenset({b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version", b"origin"})


@dataclass(frozen=True, slots=True)
class PlainUpgrade:
    response: bytes  # the 101, as websockets serializes it
    rest: bytes  # what followed the request in the same segment: WebSocket frames already
    header_lines: list[bytes]

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), like websockets' ``Headers.get_all``."""
        wanted = name.encode().lower()
        values = []
        for line in self.header_lines:
            key, _, value = line.partition(b":")
            if key.lower() == wanted:
                values.append(value.strip(b" \t").decode())
        return values


def plain_upgrade(data: bytes) -> PlainUpgrade | None:
    """The upgrade ``data`` (a connection's first segment) asks for, or None: let websockets decide."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
    if end < 0:
        return None
    head = data[:end]
    if not _HEAD.fullmatch(head):
        return None
    lines = head.split(b"\r\n")[1:]
    if len(lines) > MAX_HEADERS:
        return None
    once: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in _NOT_PLAIN or (name in _AT_MOST_ONCE and name in once):
            return None
        if name in _AT_MOST_ONCE:
            once[name] = value.strip(b" \t")
    key = once.get(b"sec-websocket-key", b"")
    if (
        not _upgrade_token_in(once.get(b"connection", b""))
        or once.get(b"upgrade", b"").lower() != b"websocket"
        or once.get(b"sec-websocket-version") != b"13"
        or not _valid_key(key)
    ):
        return None
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nDate: "
        + http_date()
        + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
        + accept
        + b"\r\n\r\n"
    )
    return PlainUpgrade(response, data[end + 4 :], lines)


def _upgrade_token_in(connection: bytes) -> bool:
    """A Connection value that is a plain comma-separated token list naming ``upgrade``."""
    if not _TOKEN_LIST.fullmatch(connection):
        return False
    return b"upgrade" in [option.strip(b" \t") for option in connection.lower().split(b",")]


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


_date_second = -1
_date = b""


def http_date() -> bytes:
    """The Date header value, formatted once per second rather than once per connection."""
    global _date_second, _date
    now = int(time.time())
    if now != _date_second:
        _date = email.utils.formatdate(now, usegmt=True).encode()
        _date_second = now
    return _date
