"""HybridConnection's receive path, frame by frame, over a real socket pair.

The far end writes raw frames with websocket-client's ABNF, so fragmentation,
interleaved pings and framing errors can be produced exactly.
"""

from __future__ import annotations

import socket
import struct
from typing import Iterator, List, Tuple

import pytest
import websocket
from websocket import ABNF

from hybridconn.connection import HybridConnection
from hybridconn.exceptions import ConnectionClosed, ProtocolError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair() -> Iterator[Tuple[HybridConnection, socket.socket]]:
    near, far = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock = near
    ws.connected = True
    conn = HybridConnection(ws)
    far.settimeout(10)
    try:
        yield conn, far
    finally:
        conn.abort()
        far.close()


def _frame(data: bytes, opcode: int, fin: bool = True) -> bytes:
    frame = ABNF.create_frame(data, opcode, fin=1 if fin else 0)
    frame.mask = 0  # server-to-client frames are unmasked
    return frame.format()


def _read_frames(sock: socket.socket) -> List[Tuple[int, bytes]]:
    """Every frame the connection sent (client frames are masked)."""
    buffer = websocket._abnf.frame_buffer(lambda n: sock.recv(n), True)
    frames = []
    sock.settimeout(2)
    try:
        while True:
            frame = buffer.recv_frame()
            frames.append((frame.opcode, frame.data))
            if frame.opcode == ABNF.OPCODE_CLOSE:
                break
    except (socket.timeout, websocket.WebSocketConnectionClosedException, OSError):
        pass
    return frames


def test_a_binary_message_in_many_fragments_comes_back_whole(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    parts = [bytes([i]) * 1000 for i in range(100)]
    wire = _frame(parts[0], ABNF.OPCODE_BINARY, fin=False)
    wire += b"".join(_frame(p, ABNF.OPCODE_CONT, fin=False) for p in parts[1:-1])
    wire += _frame(parts[-1], ABNF.OPCODE_CONT, fin=True)
    far.sendall(wire)
    assert conn.recv(timeout=10) == b"".join(parts)


def test_a_text_message_split_inside_a_character_is_decoded_whole(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    encoded = "grüße €".encode("utf-8")
    cut = encoded.index("€".encode("utf-8")) + 1  # in the middle of the euro sign
    far.sendall(_frame(encoded[:cut], ABNF.OPCODE_TEXT, fin=False) + _frame(encoded[cut:], ABNF.OPCODE_CONT))
    assert conn.recv(timeout=10) == "grüße €"


def test_a_ping_between_fragments_is_answered_and_the_message_kept(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    far.sendall(
        _frame(b"abc", ABNF.OPCODE_BINARY, fin=False)
        + _frame(b"are you there", ABNF.OPCODE_PING)
        + _frame(b"def", ABNF.OPCODE_CONT)
    )
    assert conn.recv(timeout=10) == b"abcdef"
    conn.close(timeout=2)
    sent = _read_frames(far)
    assert (ABNF.OPCODE_PONG, b"are you there") in sent


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(_frame(b"orphan", ABNF.OPCODE_CONT), id="continuation-without-a-message"),
        pytest.param(
            _frame(b"first", ABNF.OPCODE_TEXT, fin=False) + _frame(b"second", ABNF.OPCODE_TEXT),
            id="new-message-inside-a-fragmented-one",
        ),
    ],
)
def test_broken_fragmentation_fails_the_connection_with_1002(
    pair: Tuple[HybridConnection, socket.socket], wire: bytes
) -> None:
    conn, far = pair
    far.sendall(wire)
    with pytest.raises(ConnectionClosed) as caught:
        conn.recv(timeout=10)
    assert caught.value.code == 1002
    assert conn.closed
    closes = [data for opcode, data in _read_frames(far) if opcode == ABNF.OPCODE_CLOSE]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1002


def test_invalid_utf8_in_text_is_a_protocol_error_and_closes_with_1007(
    pair: Tuple[HybridConnection, socket.socket]
) -> None:
    conn, far = pair
    far.sendall(_frame(b"\xff\xfe not utf-8", ABNF.OPCODE_TEXT))
    with pytest.raises(ProtocolError):
        conn.recv(timeout=10)
    assert conn.closed and conn.close_code == 1007
    closes = [data for opcode, data in _read_frames(far) if opcode == ABNF.OPCODE_CLOSE]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1007


def test_recv_frame_keeps_frame_boundaries(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    far.sendall(_frame(b"one", ABNF.OPCODE_BINARY, fin=False) + _frame(b"two", ABNF.OPCODE_CONT))
    assert conn.recv_frame(timeout=10) == (ABNF.OPCODE_BINARY, b"one", False)
    assert conn.recv_frame(timeout=10) == (ABNF.OPCODE_CONT, b"two", True)
