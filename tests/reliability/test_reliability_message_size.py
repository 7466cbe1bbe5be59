"""Bounded memory for every WebSocket message: a message over a reader's limit ends the connection
with 1009 (RFC 6455) before it is held, on the listener's accepted connections, the sender's
connections and the emulator's control channels; a healthy pair keeps working."""

from __future__ import annotations

import queue
from typing import Any, Iterator

import pytest
import websocket

from hybridconn import ConnectionClosed, HybridConnection
from hybridconn._transport import open_websocket
from hybridconn.addresses import listen_url, token_audience
from hybridconn.auth import AUTH_HEADER, SharedAccessKeyTokenProvider
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from hybridconn.protocol import CONTROL_MESSAGE_SIZE, MAX_MESSAGE_SIZE
from tests.support.endpoints import make_client, make_listener

MB = 1024 * 1024
LIMIT = 1 * MB


def test_the_documented_defaults() -> None:
    assert MAX_MESSAGE_SIZE == 16 * MB and CONTROL_MESSAGE_SIZE == 1 * MB


class _Seen:
    def __init__(self) -> None:
        self.closed: "queue.Queue[Any]" = queue.Queue()


@pytest.fixture
def listener_side(relay: RelayEmulator) -> Iterator[_Seen]:
    seen = _Seen()
    listener = make_listener(relay, max_message_size=LIMIT)

    def on_connection(conn: HybridConnection) -> None:
        try:
            while True:
                conn.send(conn.recv(timeout=60))
        except ConnectionClosed as exc:
            seen.closed.put(exc.code)

    listener.on_connection = on_connection
    listener.open(timeout=15)
    try:
        yield seen
    finally:
        listener.close()


def _echo_once(client: Any, size: int) -> bytes:
    conn = client.connect(timeout=15)
    try:
        conn.send(b"y" * size)
        return conn.recv(timeout=30)  # type: ignore[return-value]
    finally:
        conn.close(timeout=5)


def test_a_message_over_the_listeners_limit_closes_with_1009(relay: RelayEmulator, listener_side: _Seen) -> None:
    client = make_client(relay)
    try:
        conn = client.connect(timeout=15)
        try:
            conn.send(b"x" * (LIMIT + 1))
            with pytest.raises(ConnectionClosed):
                conn.recv(timeout=30)
        finally:
            conn.close(timeout=5)
        assert listener_side.closed.get(timeout=30) == 1009
        assert _echo_once(client, LIMIT) == b"y" * LIMIT  # up to the limit is fine; the pair keeps working
    finally:
        client.close()


def test_a_message_over_the_senders_limit_closes_with_1009(relay: RelayEmulator) -> None:
    listener = make_listener(relay)
    listener.on_connection = lambda conn: conn.send(b"z" * (LIMIT + 1))
    listener.open(timeout=15)
    client = make_client(relay)
    try:
        conn = client.connect(timeout=15, max_message_size=LIMIT)
        try:
            with pytest.raises(ConnectionClosed) as caught:
                conn.recv(timeout=30)
            assert caught.value.code == 1009
        finally:
            conn.close(timeout=5)
        roomy = client.connect(timeout=15)  # the default (16 MiB) takes it
        try:
            assert roomy.recv(timeout=30) == b"z" * (LIMIT + 1)
        finally:
            roomy.close(timeout=5)
    finally:
        client.close()
        listener.close()


def _raw_control_channel(relay: RelayEmulator) -> websocket.WebSocket:
    provider = SharedAccessKeyTokenProvider(DEFAULT_KEY_NAME, DEFAULT_KEY)
    token, _ = provider.get_token(token_audience(relay.namespace, "hc1"))
    return open_websocket(listen_url(relay.namespace, "hc1"), headers={AUTH_HEADER: token}, timeout=10, what="listen")


def _close_code(ws: websocket.WebSocket) -> int:
    while True:  # frames as they come: recv_data would answer the close on a socket already shut
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")


@pytest.mark.parametrize("opcode", [websocket.ABNF.OPCODE_TEXT])
def test_an_unfinished_huge_message_on_the_emulators_control_channel_is_cut_at_1009(
        relay: RelayEmulator, opcode: int) -> None:
    listener = make_listener(relay)
    listener.on_request = lambda req: None  # type: ignore[assignment,return-value]
    listener.open(timeout=15)
    client = make_client(relay)
    ws = _raw_control_channel(relay)
    try:
        piece = (b"a" if opcode == websocket.ABNF.OPCODE_BINARY else b"\"") * (256 * 1024)
        ws.send_frame(websocket.ABNF.create_frame(piece, opcode, fin=0))
        sent = len(piece)
        try:
            while sent <= CONTROL_MESSAGE_SIZE + len(piece):  # never finished: the emulator must not wait for it
                ws.send_frame(websocket.ABNF.create_frame(piece, websocket.ABNF.OPCODE_CONT, fin=0))
                sent += len(piece)
        except (OSError, websocket.WebSocketException):
            pass  # the emulator closed the socket while we were still sending
        assert _close_code(ws) == 1009
        # the healthy listener on the same hybrid connection still answers (501: no handler result)
        assert client.request("GET", "/", timeout=30).status_code in (500, 501)
    finally:
        ws.shutdown()
        client.close()
        listener.close()
