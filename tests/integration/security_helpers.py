"""Helpers of the security tests: forged and odd tokens, a raw protocol client, gateway log lines."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import orjson
import websockets
from cryptography.hazmat.primitives import serialization
from flashline_devstack.stack import gateway_name
from websockets.exceptions import ConnectionClosed

from flashline_auth.dev import load_dev_signing_key
from flashline_auth.keys import SigningKey
from flashline_auth.minting import TokenMinter

from .conftest import Stack

AUDIENCE = "flashline"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class Forge:
    """Mints tokens with the stack's real dev keys, or with keys nobody trusts."""

    def __init__(self, stack: Stack) -> None:
        self._dir = stack.keys_dir

    def key(self, short: str) -> SigningKey:
        return load_dev_signing_key(self._dir, short)

    def mint(
        self,
        short: str,
        claims: dict[str, Any],
        *,
        ttl: int = 600,
        audience: str = AUDIENCE,
        now: float | None = None,
        key: SigningKey | None = None,
    ) -> str:
        minter = TokenMinter(key or self.key(short), audience=audience, ttl_seconds=ttl)
        token, _ = minter.mint(claims, now=now)
        return token

    def user(self, user: str, **kw: Any) -> str:
        claims = {"sub": user, "role": kw.pop("role", "customer"), **kw.pop("claims", {})}
        return self.mint("identity", claims, **kw)

    def grant(self, issuer: str, *, user: str, channel: str, **kw: Any) -> str:
        return self.mint(issuer, {"sub": user, "channel": channel}, **kw)

    def impostor(self, short: str) -> SigningKey:
        """A fresh key announcing the same kid and issuer as ``short``'s real one."""
        real = self.key(short)
        return SigningKey.generate(kid=real.kid, issuer=real.issuer, algorithm=real.algorithm)

    def public_pem(self, short: str) -> bytes:
        return (
            self.key(short)
            .private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def base_claims(self, short: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.key(short).issuer,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            **extra,
        }


class Raw:
    """A hand-driven protocol connection: send commands, collect replies by id and every push."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.replies: dict[int, dict[str, Any]] = {}
        self.pushes: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._next = 1
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Raw:
        ws = await websockets.connect(url, max_size=None, proxy=None, **kwargs)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                for line in str(frame).split("\n"):
                    if not line:
                        continue
                    message = json.loads(line)
                    if message == {}:
                        await self.ws.send("{}")  # pong
                    elif "push" in message:
                        self.pushes.append(message["push"])
                    elif "id" in message:
                        self.replies[message["id"]] = message
        except ConnectionClosed:
            pass
        finally:
            rcvd = getattr(self.ws, "close_code", None)
            self.close_code = rcvd if rcvd is not None else 1006

    async def call(self, method: str, params: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        command_id = self._next
        self._next += 1
        await self.ws.send(json.dumps({"id": command_id, method: params}))
        deadline = time.monotonic() + timeout
        while command_id not in self.replies:
            if self._reader.done():
                raise ConnectionError(f"closed with {self.close_code} before reply to {method}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {method}")
            await asyncio.sleep(0.01)
        return self.replies[command_id]

    async def closed(self, timeout: float = 10) -> int:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        assert self.close_code is not None
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def error_code(reply: dict[str, Any]) -> int | None:
    return reply.get("error", {}).get("code")


async def connected(url: str, token: str = "") -> Raw:
    raw = await Raw.open(url)
    reply = await raw.call("connect", {"token": token, "name": "security-test"})
    assert "connect" in reply, reply
    return raw


def gateway_log(stack: Stack, index: int = 0) -> list[dict[str, Any]]:
    proc = stack.group.procs[gateway_name(stack.config, index)]
    records = []
    for line in list(proc.lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


async def logged(stack: Stack, match: Any, index: int = 0, timeout: float = 5) -> dict[str, Any]:
    """The first gateway log record for which ``match(record)`` holds (waits for the pump thread)."""
    deadline = time.monotonic() + timeout
    while True:
        for record in gateway_log(stack, index):
            if match(record):
                return record
        if time.monotonic() > deadline:
            tail = [r for r in gateway_log(stack, index)][-10:]
            raise AssertionError(f"no matching gateway log record; tail: {tail}")
        await asyncio.sleep(0.05)
