"""WebSockets through the emulator to a listener: echo, accept/reject, what the listener sees,
subprotocols, close codes both ways, the pull API."""

from __future__ import annotations

import os
import threading
from typing import Callable, List, Optional

import pytest
import websocket

from hybridconn import HybridConnection
from hybridconn.exceptions import RelayTimeoutError
from hybridconn.listener import ConnectionRequest, HybridConnectionListener
from tests.support.plain_clients import Sender, read_close


Make = Callable[..., HybridConnectionListener]


def echo_messages(conn: HybridConnection) -> None:
    for message in conn:
        conn.send(message)


@pytest.fixture
def echo_listener(make_listener: Make) -> HybridConnectionListener:
    listener = make_listener(open=False)
    listener.on_connection = echo_messages
    listener.open(timeout=15)
    return listener


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 65_537, 1024 * 1024])
def test_binary_echo(echo_listener: HybridConnectionListener, sender: Sender, size: int) -> None:
    ws = sender.connect()
    payload = os.urandom(size)
    ws.send_binary(payload)
    opcode, data = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_BINARY
    assert data == payload
    ws.close()


@pytest.mark.parametrize("size", [0, 10, 70_000, 1024 * 1024])
def test_text_echo(echo_listener: HybridConnectionListener, sender: Sender, size: int) -> None:
    ws = sender.connect()
    text = ("héllo wörld ✓ " * (size // 10 + 1))[:size]
    ws.send(text)
    opcode, data = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_TEXT
    assert data.decode("utf-8") == text
    ws.close()


def test_many_messages_both_kinds(echo_listener: HybridConnectionListener, sender: Sender) -> None:
    ws = sender.connect()
    for n in range(50):
        ws.send(f"text {n}")
        ws.send_binary(bytes([n]) * n)
        assert ws.recv() == f"text {n}"
        assert ws.recv() == bytes([n]) * n
    ws.close()


def test_listener_sees_headers_suffix_query_and_id(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    seen: List[HybridConnection] = []

    @listener.on_connection
    def record(conn: HybridConnection) -> None:
        seen.append(conn)
        conn.send(f"{conn.path}|{conn.query}|{conn.headers.get('X-App') or conn.headers.get('x-app')}")
        conn.recv(timeout=10)

    listener.open(timeout=15)
    ws = sender.connect("/room/42", query="user=ann&lang=en", headers={"X-App": "demo"})
    assert ws.recv() == "/room/42|user=ann&lang=en|demo"
    ws.send("bye")
    ws.close()
    assert seen and seen[0].id
    assert "sb-hc" not in seen[0].query
    assert not any(k.lower() == "servicebusauthorization" for k in seen[0].headers)


def test_on_accept_rejects_with_status_and_sees_the_request(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    asked: List[ConnectionRequest] = []

    @listener.on_accept
    def gate(request: ConnectionRequest) -> object:
        asked.append(request)
        if request.path == "/denied":
            return (403, "Members only")
        if request.path == "/nope":
            return False
        return True

    listener.on_connection = echo_messages
    listener.open(timeout=15)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect("/denied", query="who=eve", headers={"X-Who": "eve"})
    assert info.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect("/nope")
    assert info.value.status_code == 400
    ws = sender.connect("/welcome")
    ws.send("in")
    assert ws.recv() == "in"
    ws.close()
    denied = asked[0]
    assert denied.path == "/denied" and denied.query == "who=eve" and denied.headers["x-who"] == "eve"
    assert listener.stats["rejected"] == 2


def test_crashing_on_accept_rejects_with_502(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)

    def gate(request: ConnectionRequest) -> bool:
        raise RuntimeError("gate broke")

    listener.on_accept = gate
    listener.on_connection = echo_messages
    listener.open(timeout=15)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect()
    assert info.value.status_code == 502


def test_subprotocol_choice(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, subprotocols=["chat.v1", "chat.v2"])
    chosen: List[Optional[str]] = []

    @listener.on_connection
    def handle(conn: HybridConnection) -> None:
        chosen.append(conn.subprotocol)
        echo_messages(conn)

    listener.open(timeout=15)
    ws = sender.connect(subprotocols=["mqtt", "chat.v2", "chat.v1"])
    assert ws.getsubprotocol() == "chat.v2"
    ws.send("x")
    assert ws.recv() == "x"
    ws.close()
    assert chosen == ["chat.v2"]


def test_sender_close_code_reaches_the_listener(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    codes: List[object] = []
    done = threading.Event()

    @listener.on_connection
    def handle(conn: HybridConnection) -> None:
        for message in conn:
            conn.send(message)
        codes.append((conn.close_code, conn.close_reason))
        done.set()

    listener.open(timeout=15)
    ws = sender.connect()
    ws.send("one")
    assert ws.recv() == "one"
    ws.close(status=4001, reason=b"sender done")
    assert done.wait(15)
    assert codes == [(4001, "sender done")]


def test_listener_close_code_reaches_the_sender(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)

    @listener.on_connection
    def handle(conn: HybridConnection) -> None:
        conn.recv(timeout=10)
        conn.close(4002, "listener says bye")

    listener.open(timeout=15)
    ws = sender.connect()
    ws.send("hi")
    assert read_close(ws) == (4002, "listener says bye")
    ws.shutdown()


def test_handler_crash_closes_with_1011(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)

    @listener.on_connection
    def handle(conn: HybridConnection) -> None:
        conn.recv(timeout=10)
        raise RuntimeError("handler bug")

    listener.open(timeout=15)
    ws = sender.connect()
    ws.send("hi")
    assert read_close(ws)[0] == 1011
    ws.shutdown()


def test_accept_connection_pull_api(make_listener: Make, sender: Sender) -> None:
    listener = make_listener()
    with pytest.raises(RelayTimeoutError):
        listener.accept_connection(timeout=0.1)
    results: List[object] = []

    def serve_one() -> None:
        conn = listener.accept_connection(timeout=20)
        assert conn is not None
        with conn:
            conn.send(conn.recv(timeout=10))
        results.append(conn.path)

    server = threading.Thread(target=serve_one)
    server.start()
    ws = sender.connect("/pulled")
    ws.send_binary(b"\x00\x01")
    assert ws.recv() == b"\x00\x01"
    server.join(20)
    assert results == ["/pulled"]
    ws.shutdown()


def test_accept_connection_returns_none_after_close(make_listener: Make) -> None:
    listener = make_listener()
    got: List[object] = ["unset"]
    waiter = threading.Thread(target=lambda: got.__setitem__(0, listener.accept_connection(timeout=30)))
    waiter.start()
    listener.close(timeout=5)
    waiter.join(10)
    assert got == [None]


def test_listener_close_closes_open_websockets(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_connection = echo_messages
    listener.open(timeout=15)
    ws = sender.connect()
    ws.send("x")
    assert ws.recv() == "x"
    listener.close(timeout=5)
    code, _ = read_close(ws)
    assert code in (1000, 1001)
    ws.shutdown()


def test_no_supported_subprotocol_offered_is_rejected_400(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, subprotocols=["chat.v1"])
    handled = threading.Event()
    listener.on_connection = lambda conn: handled.set()
    listener.open(timeout=15)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect(subprotocols=["mqtt", "chat.v9"])
    assert info.value.status_code == 400
    assert not handled.is_set()
    assert listener.stats["rejected"] == 1 and listener.stats["accepted"] == 0


def test_without_configured_subprotocols_an_offer_is_accepted_without_one(make_listener: Make,
                                                                          sender: Sender) -> None:
    listener = make_listener(open=False)
    chosen: List[Optional[str]] = []

    @listener.on_connection
    def handle(conn: HybridConnection) -> None:
        chosen.append(conn.subprotocol)
        echo_messages(conn)

    listener.open(timeout=15)
    # offered as a plain header: websocket-client's own check would refuse a reply that picks none
    ws = sender.connect(headers={"Sec-WebSocket-Protocol": "mqtt"})
    ws.send("x")
    assert ws.recv() == "x"
    ws.close()
    assert chosen == [None]
