"""HybridConnection's receive path, frame by frame, over a real socket pair.

The far end writes raw frames with websocket-client's ABNF, so fragmentation,
interleaved pings and framing errors can be produced exactly.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Iterator, List, Tuple

import pytest
import websocket
from websocket import ABNF

from hybridconn._frames import Frame, FrameParser, Role
from hybridconn.connection import HybridConnection
from hybridconn.exceptions import ConnectionClosed, ProtocolError, RelayTimeoutError

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
    encoded = "grüße €".encode()
    cut = encoded.index("€".encode()) + 1  # in the middle of the euro sign
    far.sendall(_frame(encoded[:cut], ABNF.OPCODE_TEXT, fin=False) + _frame(encoded[cut:], ABNF.OPCODE_CONT))
    assert conn.recv(timeout=10) == "grüße €"


def test_a_ping_between_fragments_is_answered_and_the_message_kept(
    pair: Tuple[HybridConnection, socket.socket],
) -> None:
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


def _frames_sent(sock: socket.socket) -> List[Frame]:
    """Every frame the connection sent, parsed as a server would (so each must be masked and valid)."""
    parser = FrameParser(Role.SERVER)
    frames: List[Frame] = []
    sock.settimeout(2)
    try:
        while not frames or frames[-1].opcode != ABNF.OPCODE_CLOSE:
            data = sock.recv(65536)
            frames += parser.receive(data)
            if not data:
                break
    except (socket.timeout, OSError):
        pass
    return frames


def test_every_kind_of_send_goes_out_as_valid_masked_frames(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    received: List[Frame] = []
    reader = threading.Thread(target=lambda: received.extend(_frames_sent(far)), name="test-far-reader")
    reader.start()  # a socket pair buffers less than the 70 kB body
    conn.send("text")
    conn.send(b"binary")
    conn.send_unit('{"response":{}}', b"body")
    conn.send_unit('{"response":{}}', iter([b"a" * 70_000, b"b"]))
    conn.send_stream([b"s1", b"s2"])
    conn.ping(b"ping")
    conn.pong(b"unsolicited")
    conn.close(4000, "done", timeout=0.5)
    reader.join(10)
    sent = [(frame.opcode, frame.payload, frame.fin) for frame in received]
    assert sent == [
        (ABNF.OPCODE_TEXT, b"text", True),
        (ABNF.OPCODE_BINARY, b"binary", True),
        (ABNF.OPCODE_TEXT, b'{"response":{}}', True),
        (ABNF.OPCODE_BINARY, b"body", True),
        (ABNF.OPCODE_TEXT, b'{"response":{}}', True),
        (ABNF.OPCODE_BINARY, b"a" * 65536, False),
        (ABNF.OPCODE_CONT, b"a" * (70_000 - 65536), False),
        (ABNF.OPCODE_CONT, b"b", True),
        (ABNF.OPCODE_BINARY, b"s1", False),
        (ABNF.OPCODE_CONT, b"s2", True),
        (ABNF.OPCODE_PING, b"ping", True),
        (ABNF.OPCODE_PONG, b"unsolicited", True),
        (ABNF.OPCODE_CLOSE, struct.pack("!H", 4000) + b"done", True),
    ]


def test_control_payloads_over_125_bytes_and_unsendable_close_codes_are_refused(
    pair: Tuple[HybridConnection, socket.socket]
) -> None:
    conn, far = pair
    with pytest.raises(ValueError):
        conn.ping(b"x" * 126)
    with pytest.raises(ValueError):
        conn.pong(b"x" * 126)
    for code in (1005, 1006, 999, 5000):
        with pytest.raises(ValueError):
            conn.close(code, timeout=0.5)
    assert not conn.closed  # refused before anything changed
    conn.send(b"still open")
    conn.close(timeout=0.5)
    assert [frame.opcode for frame in _frames_sent(far)] == [ABNF.OPCODE_BINARY, ABNF.OPCODE_CLOSE]


def test_a_masked_frame_from_the_far_end_is_accepted(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    far.sendall(ABNF.create_frame(b"masked", ABNF.OPCODE_BINARY).format())  # masked, as a client sends
    assert conn.recv(timeout=10) == b"masked"


def test_a_frame_cut_by_a_receive_timeout_is_completed_by_the_next_receive(
    pair: Tuple[HybridConnection, socket.socket]
) -> None:
    conn, far = pair
    wire = _frame("€uro".encode() * 1000, ABNF.OPCODE_TEXT)
    far.sendall(wire[:3000])
    with pytest.raises(RelayTimeoutError):
        conn.recv(timeout=0.3)
    assert not conn.closed
    far.sendall(wire[3000:])
    assert conn.recv(timeout=10) == "€uro" * 1000


def test_a_peer_that_stalls_inside_a_frame_loses_the_connection_after_io_timeout() -> None:
    near, far = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = near, True
    conn = HybridConnection(ws, io_timeout=0.5)
    try:
        far.sendall(_frame(b"x" * 1000, ABNF.OPCODE_BINARY)[:500])
        with pytest.raises(ConnectionClosed) as caught:
            conn.recv(timeout=None)  # waits for ever between messages, not inside a frame
        assert caught.value.code == 1006 and conn.closed
    finally:
        conn.abort()
        far.close()


def test_a_message_over_max_message_size_is_closed_with_1009() -> None:
    near, far = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = near, True
    conn = HybridConnection(ws, max_message_size=1000)
    far.settimeout(10)
    try:
        far.sendall(_frame(b"x" * 1000, ABNF.OPCODE_BINARY))
        assert conn.recv(timeout=10) == b"x" * 1000
        far.sendall(_frame(b"x" * 600, ABNF.OPCODE_BINARY, fin=False) + _frame(b"x" * 401, ABNF.OPCODE_CONT))
        with pytest.raises(ConnectionClosed) as caught:
            conn.recv(timeout=10)
        assert caught.value.code == 1009 and conn.close_code == 1009
        closes = [frame.payload for frame in _frames_sent(far) if frame.opcode == ABNF.OPCODE_CLOSE]
        assert closes and struct.unpack("!H", closes[0][:2])[0] == 1009
    finally:
        conn.abort()
        far.close()


@pytest.mark.parametrize("payload", [struct.pack("!H", 1005), struct.pack("!H", 999), b"\x03"],
                         ids=["local-only-code", "code-under-1000", "one-byte"])
def test_a_broken_close_frame_from_the_peer_is_answered_with_1002(
    pair: Tuple[HybridConnection, socket.socket], payload: bytes
) -> None:
    conn, far = pair
    far.sendall(_frame(payload, ABNF.OPCODE_CLOSE))
    with pytest.raises(ConnectionClosed) as caught:
        conn.recv(timeout=10)
    assert caught.value.code == 1002
    closes = [frame.payload for frame in _frames_sent(far) if frame.opcode == ABNF.OPCODE_CLOSE]
    assert closes and struct.unpack("!H", closes[0][:2])[0] == 1002


def test_a_close_without_a_code_is_1005_and_answered_with_1000(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    far.sendall(_frame(b"", ABNF.OPCODE_CLOSE))
    with pytest.raises(ConnectionClosed) as caught:
        conn.recv(timeout=10)
    assert caught.value.code == 1005 and conn.close_code == 1005
    closes = [frame.payload for frame in _frames_sent(far) if frame.opcode == ABNF.OPCODE_CLOSE]
    assert closes == [struct.pack("!H", 1000)]


def test_frames_sent_together_are_read_in_one_go(pair: Tuple[HybridConnection, socket.socket]) -> None:
    conn, far = pair
    far.sendall(b"".join(_frame(b"%d" % i, ABNF.OPCODE_BINARY) for i in range(50)) + _frame(b"", ABNF.OPCODE_PONG))
    assert [conn.recv(timeout=10) for _ in range(50)] == [b"%d" % i for i in range(50)]
    far.sendall(_frame(b"last", ABNF.OPCODE_TEXT))
    assert conn.recv(timeout=10) == "last"  # the pong between was swallowed
