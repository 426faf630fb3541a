"""The gateway frames text itself, once per payload: the bytes must be websockets' own."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from push_gateway.connection import _TextFrames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_frame_is_byte_for_byte_what_websockets_writes(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert _TextFrames()(payload) == expected


def test_one_payload_is_framed_once_and_another_gets_its_own_frame() -> None:
    frames = _TextFrames()
    publication = b'{"push":{"channel":"stock:1"}}'
    first = frames(publication)
    assert frames(publication) is first
    equal_but_other = bytes(bytearray(publication))
    assert frames(equal_but_other) == first and frames(equal_but_other) is not first
    assert frames(b"other") == Frame(Opcode.TEXT, b"other").serialize(mask=False, extensions=[])
