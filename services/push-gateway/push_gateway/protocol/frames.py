"""JSON-lines framing: one WebSocket text frame holds one or more objects separated by ``\\n``.

Decoding is strict about shape (every line an object) and tolerant about content (unknown
fields are the caller's to ignore). Encoding produces bytes once, so a frame can be written to
many connections as is; ``orjson.Fragment`` embeds JSON that is already encoded.
"""

from __future__ import annotations

from typing import Any

import orjson

from push_gateway.protocol.codes import ErrorCode

PING = b"{}"


class BadFrame(ValueError):
    """The frame is not JSON lines of objects: the connection must close with 3501."""


def decode_commands(data: str | bytes) -> list[dict[str, Any]]:
    """Commands in a frame, in order; raises BadFrame."""
    if isinstance(data, str):
        data = data.encode()
    commands: list[dict[str, Any]] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            command = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadFrame(f"malformed JSON: {exc}") from exc
        if not isinstance(command, dict):
            raise BadFrame("a command must be a JSON object")
        commands.append(command)
    return commands


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def reply(command_id: int, method: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": command_id, method: result})


def error_reply(command_id: int, code: ErrorCode, message: str | None = None) -> bytes:
    err: dict[str, Any] = {"code": int(code), "message": message or code.message}
    if code.temporary:
        err["temporary"] = True
    return orjson.dumps({"id": command_id, "error": err})


def pub_body(data: bytes, offset: int) -> bytes:
    """A publication object (``{"data": ..., "offset": N}``) from already-encoded data."""
    if offset:
        return b'{"data":' + data + b',"offset":' + str(offset).encode() + b"}"
    return b'{"data":' + data + b"}"


def pub_push(channel_json: bytes, body: bytes) -> bytes:
    """A publication push from an encoded channel name (a JSON string) and publication body."""
    return b'{"push":{"channel":' + channel_json + b',"pub":' + body + b"}}"


def unsubscribe_push(channel: str, code: int, reason: str) -> bytes:
    return orjson.dumps({"push": {"channel": channel, "unsubscribe": {"code": code, "reason": reason}}})


def subscribe_push(channel: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"push": {"channel": channel, "subscribe": result}})
