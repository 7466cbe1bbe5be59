"""hybridconn._frames builds the same masked frames websocket-client does."""

from __future__ import annotations

import os

import pytest
from websocket import ABNF

from hybridconn._frames import mask, pack_frame

SIZES = [0, 1, 3, 4, 5, 125, 126, 127, 1023, 1024, 1025, 65535, 65536, 65537, 1 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_mask_matches_websocket_client(size: int) -> None:
    data, key = os.urandom(size), os.urandom(4)
    expected = ABNF.mask(key, data)
    for form in (data, bytearray(data), memoryview(data)):
        assert bytes(mask(key, form)) == expected
    assert bytes(mask(key, mask(key, data))) == data  # masking twice restores the payload


_FRAMES = [(size, fin, opcode) for size in SIZES
           for fin, opcode in [(1, ABNF.OPCODE_BINARY), (0, ABNF.OPCODE_TEXT), (1, ABNF.OPCODE_CONT)]]
_FRAMES += [(size, 1, ABNF.OPCODE_PING) for size in SIZES if size <= 125]  # control frames: at most 125 bytes


@pytest.mark.parametrize("size, fin, opcode", _FRAMES)
def test_frame_matches_websocket_client(size: int, fin: int, opcode: int) -> None:
    payload = os.urandom(size)
    wire = pack_frame(opcode, payload, fin=bool(fin), masked=True)
    key = wire[len(wire) - size - 4 : len(wire) - size]
    reference = ABNF.create_frame(payload, opcode, fin=fin)
    reference.get_mask_key = lambda _n: key
    assert wire == reference.format()


def test_every_frame_gets_a_fresh_key() -> None:
    keys = {pack_frame(ABNF.OPCODE_BINARY, b"x", masked=True)[2:6] for _ in range(50)}
    assert len(keys) > 40
