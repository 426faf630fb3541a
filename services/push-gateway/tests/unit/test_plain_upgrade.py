"""Differential test: a request ``plain_upgrade`` answers gets the very 101 websockets would send.

``plain_upgrade`` may leave any request to websockets (None), but when it answers, websockets
must accept the same bytes with the same response; and the requests real clients send (the
bench's, browsers', the SDKs') must take the plain path.
"""

from __future__ import annotations

import logging
import random
import re

import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol

from push_gateway.upgrade import plain_upgrade

_LOG = logging.getLogger("test.websockets")
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def request(*headers: bytes, line: bytes = b"GET /connection/websocket HTTP/1.1", end: bytes = b"\r\n\r\n") -> bytes:
    return b"\r\n".join((line, *headers)) + end


BENCH = request(
    b"Host: 127.0.0.1:8000",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
)
BROWSER = request(
    b"Host: shop.example.com",
    b"Connection: Upgrade",
    b"Pragma: no-cache",
    b"Cache-Control: no-cache",
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    b"Upgrade: websocket",
    b"Origin: https://shop.example.com",
    b"Sec-WebSocket-Version: 13",
    b"Accept-Encoding: gzip, deflate, br",
    b"Accept-Language: en-US,en;q=0.9",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
)
PYTHON_SDK = request(
    b"Host: localhost:8000",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    b"User-Agent: Python/3.11 websockets/14.1",
    line=b"GET /connection/websocket?format=json HTTP/1.1",
)
NODE_SDK = request(
    b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Key: " + KEY,
    b"Connection: Upgrade",
    b"Upgrade: websocket",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    b"Host: 127.0.0.1:8000",
)
PLAIN = {"bench": BENCH, "browser": BROWSER, "python sdk": PYTHON_SDK, "node sdk": NODE_SDK}


def websockets_response(data: bytes) -> bytes | None:
    """The 101 websockets answers ``data`` with, or None when it does not upgrade."""
    ws = ServerProtocol(max_size=65536, logger=_LOG)
    ws.receive_data(data)
    events = ws.events_received()
    if not events or not isinstance(events[0], Request) or ws.handshake_exc is not None:
        return None
    response = ws.accept(events[0])
    return response.serialize() if response.status_code == 101 else None


def same_as_websockets(data: bytes) -> bool:
    """True when the plain path leaves ``data`` to websockets or answers exactly as it would."""
    upgrade = plain_upgrade(data)
    if upgrade is None:
        return True
    theirs = websockets_response(data)
    return theirs is not None and _DATE.sub(b"\r\nDate\r\n", upgrade.response) == _DATE.sub(b"\r\nDate\r\n", theirs)


@pytest.mark.parametrize("name", PLAIN)
def test_real_clients_take_the_plain_path(name: str) -> None:
    data = PLAIN[name] + b"\x81\x80\x00\x00\x00\x00"  # and an empty text frame right behind it
    upgrade = plain_upgrade(data)
    assert upgrade is not None
    assert upgrade.rest == b"\x81\x80\x00\x00\x00\x00"
    assert same_as_websockets(PLAIN[name])
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in upgrade.response  # RFC 6455's example


def variants() -> list[tuple[str, bytes]]:
    h = {
        "upgrade": b"Upgrade: websocket",
        "connection": b"Connection: Upgrade",
        "key": b"Sec-WebSocket-Key: " + KEY,
        "version": b"Sec-WebSocket-Version: 13",
    }

    def swap(name: str, line: bytes | None) -> bytes:
        lines = [line if key == name else value for key, value in h.items()]
        return request(*(x for x in lines if x is not None))

    cases = [(f"no {name}", swap(name, None)) for name in h]
    for value in (b"upgrade", b"keep-alive, Upgrade", b"Upgrade, close", b"Upgrade,", b",Upgrade", b"Upgrade,,x",
                  b"Up grade", b"Upgrade;x", b"close", b"", b"Upgrade\t,\tfoo", b'"Upgrade"', b"Upgrade, x y",
                  b'Upgrade, "q"', b"Upgrade, (x)"):  # fmt: skip
        cases.append((f"Connection: {value!r}", swap("connection", b"Connection: " + value)))
    for value in (b"WebSocket", b"websocket, h2c", b"websocket/13", b"h2c", b" websocket ", b"web socket"):
        cases.append((f"Upgrade: {value!r}", swap("upgrade", b"Upgrade: " + value)))
    for value in (KEY[:-4], KEY + b"AAAA", b"dGhlIHNhbXBsZSBub25jZQ=", b"dGhlIHNhbXBsZSBub25jZQ!=", b"", b"x" * 24):
        cases.append((f"key {value!r}", swap("key", b"Sec-WebSocket-Key: " + value)))
    for value in (b"12", b"13, 8", b"", b"013"):
        cases.append((f"version {value!r}", swap("version", b"Sec-WebSocket-Version: " + value)))
    for line in (b"POST /connection/websocket HTTP/1.1", b"get /connection/websocket HTTP/1.1",
                 b"GET /connection/websocket HTTP/1.0", b"GET /connection/websocket http/1.1",
                 b"GET /connection/websocket?x=1&y=2 HTTP/1.1", b"GET /connection/websocket/ HTTP/1.1",
                 b"GET /other HTTP/1.1", b"GET /healthz HTTP/1.1", b"GET  /connection/websocket HTTP/1.1",
                 b"GET /connection/websocket  HTTP/1.1", b"GET /connection/websocket HTTP/1.1 ",
                 b"GET http://x/connection/websocket HTTP/1.1", b"GET /connection/websocket\xff HTTP/1.1"):  # fmt: skip
        cases.append((f"request line {line!r}", request(*h.values(), line=line)))
    for extra in (b"Origin: https://a", b"Origin: https://a\r\nOrigin: https://b", b"Upgrade: websocket",
                  b"Connection: Upgrade", b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 13",
                  b"Content-Length: 0", b"Content-Length: 5", b"Transfer-Encoding: chunked",
                  b"Sec-WebSocket-Protocol: centrifuge-protobuf", b"Sec-WebSocket-Protocol: ,,",
                  b"Sec-WebSocket-Extensions: ;;;", b"X-Forwarded-For: 10.0.0.1", b"Cookie: a=\xc3\xa9",
                  b"Bad Name: x", b"NoColon", b" folded: x", b"\tfolded", b"X: a\rb", b"X: a\nb", b"X:",
                  b"X:   spaced   ", b"X: \x00", b"X: \x7f", b": empty name"):  # fmt: skip
        cases.append((f"extra {extra!r}", request(*h.values(), extra)))
    cases.append(("bare LF line ends", b"\n".join((b"GET /connection/websocket HTTP/1.1", *h.values())) + b"\n\n"))
    cases.append(("no blank line", request(*h.values(), end=b"\r\n")))
    cases.append(("split request", request(*h.values())[:-1]))
    cases.append(("129 headers", request(*h.values(), *[b"X-%d: y" % i for i in range(125)])))
    cases.append(("128 headers", request(*h.values(), *[b"X-%d: y" % i for i in range(124)])))
    cases.append(("head over 4 KiB", request(*h.values(), b"X: " + b"y" * 4100)))
    cases.append(("mixed case names", request(b"uPGRADE: websocket", b"CONNECTION: upgrade", b"sec-websocket-key: "
                                              + KEY, b"SEC-WEBSOCKET-VERSION: 13")))  # fmt: skip
    return cases


VARIANTS = variants()


@pytest.mark.parametrize(("name", "data"), VARIANTS, ids=[name for name, _ in VARIANTS])
def test_answers_only_what_websockets_accepts_and_as_websockets_would(name: str, data: bytes) -> None:
    assert same_as_websockets(data)


def test_the_variants_cover_both_paths() -> None:
    plain = {name for name, data in VARIANTS if plain_upgrade(data) is not None}
    assert {"Connection: b'keep-alive, Upgrade'", "mixed case names", "extra b'Origin: https://a'"} <= plain
    assert "extra b'Content-Length: 0'" not in plain and len(plain) < len(VARIANTS) / 2


@pytest.mark.parametrize("path", [b"/other", b"/healthz", b"/metrics", b"/connection/websocket/", b"/connection"])
def test_other_paths_are_left_to_the_server(path: bytes) -> None:
    """websockets upgrades any path; the server answers those as probes (404 and the like)."""
    assert plain_upgrade(BENCH.replace(b"/connection/websocket", path, 1)) is None


def test_random_mutations_never_get_another_answer() -> None:
    rnd = random.Random(5)
    alphabet = b" \t\r\n:,;=/?-aAzZ0129\x00\x7f\x80\xff"
    for _ in range(5000):
        data = bytearray(rnd.choice(list(PLAIN.values())))
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(data))
            op = rnd.randrange(3)
            if op == 0:
                del data[at]
            elif op == 1:
                data[at] = rnd.choice(alphabet)
            else:
                data.insert(at, rnd.choice(alphabet))
        assert same_as_websockets(bytes(data)), bytes(data)


def test_forwarded_header_values_are_read_as_websockets_reads_them() -> None:
    data = request(b"X-Forwarded-For: 10.0.0.1 ", b"x-forwarded-for:\t10.0.0.2, 10.0.0.3", *BENCH.split(b"\r\n")[1:6])
    upgrade = plain_upgrade(data)
    assert upgrade is not None
    ws = ServerProtocol(max_size=65536, logger=_LOG)
    ws.receive_data(data)
    [parsed] = ws.events_received()
    assert isinstance(parsed, Request)
    expected = ["10.0.0.1", "10.0.0.2, 10.0.0.3"]
    assert upgrade.get_all("X-Forwarded-For") == parsed.headers.get_all("X-Forwarded-For") == expected
