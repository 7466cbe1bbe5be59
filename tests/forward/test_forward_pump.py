"""StreamBridge on its own: a real TCP socket pair and a real WebSocket pair.

The WebSocket pair is websocket-client framing on a socketpair.
"""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Tuple

import pytest
import websocket

from hybridconn.connection import HybridConnection
from hybridconn.exceptions import ConnectionClosed
from hybridconn.forward.pump import MAX_MESSAGE, StreamBridge


def _ws_over(sock: socket.socket) -> websocket.WebSocket:
    # Both ends frame with websocket-client; no HTTP handshake is needed for the framing itself.
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock = sock
    ws.connected = True
    return ws


class Rig:
    """app <-TCP-> bridge <-WebSocket-> far"""

    def __init__(self) -> None:
        self.app, bridge_tcp = socket.socketpair()
        near_ws, far_ws = socket.socketpair()
        self.near = HybridConnection(_ws_over(near_ws))
        self.far = HybridConnection(_ws_over(far_ws))
        self.app.settimeout(10)
        self.bridge = StreamBridge(bridge_tcp, self.near, "test")
        self.thread = threading.Thread(target=self.bridge.run, name="test-bridge", daemon=True)

    def start(self, initial: bytes = b"") -> "Rig":
        self.thread = threading.Thread(target=self.bridge.run, args=(initial,), name="test-bridge", daemon=True)
        self.thread.start()
        return self

    def app_read_all(self) -> bytes:
        chunks = []
        while True:
            data = self.app.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def far_messages(self) -> Tuple[List[bytes], ConnectionClosed]:
        messages: List[bytes] = []
        while True:
            try:
                messages.append(self.far.recv(timeout=10))  # type: ignore[arg-type]
            except ConnectionClosed as exc:
                return messages, exc

    def close(self) -> None:
        self.bridge.abort()
        self.thread.join(10)
        self.far.abort()
        self.app.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig()
    try:
        yield made
    finally:
        made.close()


def test_socket_data_becomes_bounded_non_empty_messages_and_eof_a_close_1000(rig: Rig) -> None:
    rig.start()
    payload = bytes(range(256)) * 2048  # 512 KiB
    writer = threading.Thread(
        target=lambda: (rig.app.sendall(payload), rig.app.shutdown(socket.SHUT_WR)), name="test-writer"
    )
    writer.start()
    messages, closed = rig.far_messages()
    writer.join(10)
    assert all(1 <= len(m) <= MAX_MESSAGE for m in messages)
    assert b"".join(messages) == payload
    assert (closed.code, closed.reason) == (1000, "Shutdown")
    assert rig.app_read_all() == b""  # our echo of the close ended the other direction too
    assert rig.bridge.wait(10)
    assert rig.bridge.bytes_up == len(payload)


def test_messages_reach_the_socket_and_peer_close_is_a_half_close(rig: Rig) -> None:
    """The peer's close is EOF one way; what the app sends after it still arrives, then its EOF answers."""
    rig.start(initial=b"early:")
    rig.far.send(b"binary,")
    rig.far.send("text")
    rig.far.shutdown_send(1000)
    assert rig.app_read_all() == b"early:binary,text"
    rig.app.sendall(b"the answer, after the close")
    rig.app.shutdown(socket.SHUT_WR)
    messages, closed = rig.far_messages()
    assert b"".join(messages) == b"the answer, after the close"
    assert closed.code == 1000
    assert rig.bridge.wait(10)
    assert rig.near.closed


def test_a_peer_that_drops_after_its_close_ends_both_directions(rig: Rig) -> None:
    rig.start()
    rig.far.shutdown_send(1000)
    assert rig.app.recv(10) == b""  # EOF one way; the app would still be sending
    rig.far.abort()  # the peer gave up waiting for our answer
    assert rig.bridge.wait(10)
    assert rig.app_read_all() == b""
    assert rig.near.closed and rig.near.close_code == 1000


def test_an_empty_message_is_eof_one_way_only(rig: Rig) -> None:
    """azbridge reads a zero-length message as end of stream; the other direction keeps going."""
    rig.start()
    rig.far.send(b"last words")
    rig.far.send(b"")
    assert rig.app_read_all() == b"last words"
    rig.app.sendall(b"still talking")
    assert rig.far.recv(timeout=10) == b"still talking"
    rig.app.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed) as info:
        rig.far.recv(timeout=10)
    assert info.value.code == 1000
    assert rig.bridge.wait(10)


def test_abort_ends_both_directions(rig: Rig) -> None:
    rig.start()
    rig.app.sendall(b"x")
    assert rig.far.recv(timeout=10) == b"x"
    names = {t.name for t in threading.enumerate()}
    assert "hybridconn-forward-test-up" in names
    rig.bridge.abort()
    assert rig.bridge.wait(10)
    assert rig.app_read_all() == b""
    rig.thread.join(10)
    assert "hybridconn-forward-test-up" not in {t.name for t in threading.enumerate()}
