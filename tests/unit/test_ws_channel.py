"""The emulator's server-side WebSocket (WsChannel) over a real socket pair, frame by frame.

The far end plays the client: it writes masked frames with hybridconn._frames and
reads the channel's frames with a strict client-role parser (so every server
frame must be unmasked and valid).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Iterator, List, Tuple

import pytest

from hybridconn._frames import (
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Frame, FrameParser, Role, pack_frame,
)
from hybridconn.emulator.ws import (
    BytesMessage, CloseAnswered, ConnectionLost, PeerClosed, TextMessage, WsChannel,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair() -> Iterator[Tuple[WsChannel, socket.socket]]:
    near, far = socket.socketpair()
    far.settimeout(10)
    channel = WsChannel(near, name="test")
    try:
        yield channel, far
    finally:
        channel.abort()
        near.close()
        far.close()


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return pack_frame(opcode, payload, fin=fin, masked=True)


def frames_from(sock: socket.socket, until_close: bool = True) -> List[Frame]:
    parser = FrameParser(Role.CLIENT)  # strict: a masked server frame fails the test
    frames: List[Frame] = []
    sock.settimeout(2)
    with contextlib.suppress(socket.timeout):
        while not (until_close and frames and frames[-1].opcode == OP_CLOSE):
            data = sock.recv(65536)
            frames += parser.receive(data)
            if not data:
                return frames
    return frames


def read_until(channel: WsChannel, count: int) -> List[object]:
    events: List[object] = []
    for _ in range(50):
        events += channel.read_events(timeout=5)
        if len(events) >= count:
            break
    return events


def test_data_frames_become_wsproto_message_events_one_per_frame(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    encoded = "grüße €".encode()
    cut = encoded.index("€".encode()) + 1  # inside the euro sign
    far.sendall(client_frame(OP_TEXT, encoded[:cut], fin=False) + client_frame(OP_CONT, encoded[cut:])
                + client_frame(OP_BINARY, b"\x00\xff", fin=False) + client_frame(OP_CONT, b"end"))
    events = read_until(channel, 4)
    assert [type(e) for e in events] == [TextMessage, TextMessage, BytesMessage, BytesMessage]
    assert [(e.data, e.message_finished) for e in events] == [  # type: ignore[attr-defined]
        ("grüße ", False), ("€", True), (b"\x00\xff", False), (b"end", True)]


def test_bytes_read_past_the_handshake_are_parsed_first() -> None:
    near, far = socket.socketpair()
    channel = WsChannel(near, client_frame(OP_TEXT, b"early"), name="test")
    try:
        events = channel.read_events(timeout=5)
        assert [(type(e), e.data) for e in events] == [(TextMessage, "early")]  # type: ignore[attr-defined]
    finally:
        channel.abort()
        near.close()
        far.close()


def test_pings_are_answered_with_unmasked_pongs_and_pongs_swallowed(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    far.sendall(client_frame(OP_PING, b"hello") + client_frame(OP_PONG, b"keepalive") + client_frame(OP_TEXT, b"x"))
    assert [type(e) for e in read_until(channel, 1)] == [TextMessage]
    assert frames_from(far, until_close=False) == [Frame(OP_PONG, b"hello", True)]


def test_sends_are_unmasked_server_frames(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    assert channel.send_message("text")
    assert channel.send_message(b"part", fin=False)
    assert not channel.send_message("a text fragment inside a binary message", fin=True)  # refused, nothing sent
    assert channel.send_message(b"end")
    assert channel.send_unit('{"request":{}}', b"body")
    assert channel.send_unit('{"request":{}}')
    assert channel.send_close(4001, "app done")
    assert not channel.can_send and not channel.send_message("after the close")
    assert frames_from(far) == [
        Frame(OP_TEXT, b"text", True), Frame(OP_BINARY, b"part", False), Frame(OP_CONT, b"end", True),
        Frame(OP_TEXT, b'{"request":{}}', True), Frame(OP_BINARY, b"body", True),
        Frame(OP_TEXT, b'{"request":{}}', True), Frame(OP_CLOSE, struct.pack("!H", 4001) + b"app done", True),
    ]


def test_a_close_we_sent_and_the_peer_answered_is_close_answered(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    assert channel.send_close(1001, "going")
    far.sendall(client_frame(OP_TEXT, b"in flight") + client_frame(OP_CLOSE, struct.pack("!H", 1001)))
    events = read_until(channel, 2)
    assert events[0].data == "in flight"  # type: ignore[attr-defined]
    assert events[1] == CloseAnswered(1001, "")
    assert channel.is_down
    assert channel.read_events(timeout=1) == [ConnectionLost("connection already closed")]


@pytest.mark.parametrize("payload, code", [(struct.pack("!H", 4000) + b"bye", 4000), (b"", None)],
                         ids=["with-code", "without-code"])
def test_a_close_the_peer_started_is_echoed_and_reported(
    pair: Tuple[WsChannel, socket.socket], payload: bytes, code: object
) -> None:
    channel, far = pair
    far.sendall(client_frame(OP_CLOSE, payload))
    events = read_until(channel, 1)
    assert events == [PeerClosed(code, "bye" if code else "")]  # type: ignore[arg-type]
    assert frames_from(far) == [Frame(OP_CLOSE, payload, True)]  # the same code and reason back
    assert channel.is_down and not channel.send_close()


@pytest.mark.parametrize(
    "wire, code",
    [
        pytest.param(pack_frame(OP_BINARY, b"unmasked"), 1002, id="unmasked"),
        pytest.param(client_frame(OP_TEXT, b"\xff"), 1007, id="invalid-utf8"),
        pytest.param(client_frame(OP_TEXT, "€".encode()[:2], fin=False) + client_frame(OP_CONT, b""), 1007,
                     id="character-cut-at-the-end"),
        pytest.param(client_frame(OP_CONT, b"stray"), 1002, id="stray-continuation"),
        pytest.param(client_frame(OP_CLOSE, struct.pack("!H", 1006)), 1002, id="local-only-close-code"),
        pytest.param(client_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007, id="close-reason-not-utf8"),
        pytest.param(bytes([0xC2, 0x80]) + b"\x00" * 4, 1002, id="rsv1-without-deflate"),
    ],
)
def test_protocol_violations_close_with_1002_or_1007(
    pair: Tuple[WsChannel, socket.socket], wire: bytes, code: int
) -> None:
    channel, far = pair
    far.sendall(wire)
    events = read_until(channel, 1)
    lost = events[-1]
    assert isinstance(lost, ConnectionLost) and lost.code == code
    closes = [f for f in frames_from(far) if f.opcode == OP_CLOSE]
    assert closes and struct.unpack("!H", closes[0].payload[:2])[0] == code
    assert channel.is_down


def test_eof_is_connection_lost(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    far.sendall(client_frame(OP_BINARY, b"x" * 1000)[:10])
    far.shutdown(socket.SHUT_WR)
    assert read_until(channel, 1) == [ConnectionLost("connection lost")]


def test_a_silenced_channel_writes_nothing(pair: Tuple[WsChannel, socket.socket]) -> None:
    channel, far = pair
    channel.silence()
    far.sendall(client_frame(OP_PING, b"anyone?"))
    assert channel.read_events(timeout=2) == []
    assert channel.send_message("unheard")
    assert frames_from(far, until_close=False) == []


@pytest.mark.parametrize("code", [None, 1005], ids=["none", "1005"])
def test_a_close_without_a_code_goes_out_empty(pair: Tuple[WsChannel, socket.socket], code: object) -> None:
    channel, far = pair
    assert not channel.send_close(code, "a reason needs a code")  # type: ignore[arg-type]
    assert not channel.send_close(1006)  # never on the wire
    assert channel.can_send  # refusals change nothing
    assert channel.send_close(code)  # type: ignore[arg-type]
    assert frames_from(far) == [Frame(OP_CLOSE, b"", True)]
