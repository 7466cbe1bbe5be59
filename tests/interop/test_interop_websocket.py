"""Scenarios 1, 2 and 5a: relayed WebSockets between hyco-ws 1.0.5 and hybridconn, via the emulator.

1. hyco-ws listener  <-> emulator <-> hybridconn sender
2. hybridconn listener <-> emulator <-> hyco-ws sender (relayedConnect)
5a. hyco-ws listener <-> emulator <-> hyco-ws sender (no hybridconn code on either end)

The peers get ws://127.0.0.1:PORT addresses and tokens from the package's createRelayToken.
"""

from __future__ import annotations

import queue
from typing import Any, Iterator, List, Tuple

import pytest

from hybridconn import HybridConnectionClient, HybridConnectionListener
from hybridconn.addresses import connect_url, listen_url
from hybridconn.exceptions import ConnectionClosed
from tests.support.node_peers import NodePeer, digest, event_message, payload, peer_args, requires_node, send_command

pytestmark = [pytest.mark.interop, requires_node]

# 125/126 and 65535/65536 straddle the WebSocket length encodings; 65537 is over the
# relay's 64 kB control-channel limit (irrelevant to rendezvous sockets, which is the point).
SIZES = [0, 1, 125, 126, 65535, 65536, 65537, 1024 * 1024]
KINDS = ["text", "binary"]
# Close codes both ways: normal, an application code with a reason, and 1011 (server error).
CLOSES = [(1000, ""), (1000, "done"), (4001, "application says bye \u2713"), (1011, "unexpected condition")]
TIMEOUT = 20.0


@pytest.fixture
def hyco_ws_listener(relay: Any, start_peer: Any) -> NodePeer:
    peer = start_peer("ws_listener.js", *peer_args(uri=listen_url(relay.namespace, "hc1")))
    peer.wait_for("listening")
    relay.wait_for_listeners("hc1", count=1, timeout=10)
    return peer


@pytest.fixture
def client(relay: Any) -> Iterator[HybridConnectionClient]:
    with HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as sender:
        yield sender


def start_hyco_ws_sender(relay: Any, start_peer: Any, **options: str) -> NodePeer:
    peer = start_peer("ws_sender.js", *peer_args(uri=connect_url(relay.namespace, "hc1"), **options))
    peer.wait_for("open", timeout=TIMEOUT)
    return peer


# ------------------------------------------------------------------------------------------
# 1. hyco-ws listener <-> hybridconn sender


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_hyco_ws_listener_echoes_hybridconn_sender(
    hyco_ws_listener: NodePeer, client: HybridConnectionClient, kind: str, size: int
) -> None:
    message = payload(kind, size)
    with client.connect(timeout=TIMEOUT) as conn:
        conn.send(message)
        echoed = conn.recv(timeout=TIMEOUT)
    assert digest(echoed) == digest(message)
    seen = hyco_ws_listener.wait_for("message")
    assert {k: seen[k] for k in ("binary", "size", "sha256")} == digest(message)


@pytest.mark.parametrize("code,reason", CLOSES)
def test_hybridconn_sender_close_code_reaches_hyco_ws_listener(
    hyco_ws_listener: NodePeer, client: HybridConnectionClient, code: int, reason: str
) -> None:
    conn = client.connect(timeout=TIMEOUT)
    conn.send("before close")
    assert conn.recv(timeout=TIMEOUT) == "before close"
    conn.close(code, reason, timeout=TIMEOUT)
    closed = hyco_ws_listener.wait_for("close")
    assert (closed["code"], closed["reason"]) == (code, reason)
    # ws 1.x answers a close with the same code and reason (WebSocket.js, receiver onclose).
    assert (conn.close_code, conn.close_reason) == (code, reason)


@pytest.mark.parametrize("code,reason", CLOSES)
def test_hyco_ws_listener_close_code_reaches_hybridconn_sender(
    hyco_ws_listener: NodePeer, client: HybridConnectionClient, code: int, reason: str
) -> None:
    with client.connect(timeout=TIMEOUT) as conn:
        conn.send("before close")
        assert conn.recv(timeout=TIMEOUT) == "before close"
        hyco_ws_listener.send(cmd="close", code=code, reason=reason)
        with pytest.raises(ConnectionClosed) as info:
            conn.recv(timeout=TIMEOUT)
        assert (info.value.code, info.value.reason) == (code, reason)
        assert (conn.close_code, conn.close_reason) == (code, reason)
    closed = hyco_ws_listener.wait_for("close")
    assert closed["code"] == code


def test_hyco_ws_listener_pushes_to_hybridconn_sender(
    hyco_ws_listener: NodePeer, client: HybridConnectionClient
) -> None:
    """The listener speaks first (unsolicited messages, both types) on the relayed socket."""
    with client.connect(timeout=TIMEOUT) as conn:
        hyco_ws_listener.wait_for("open")
        for message in ("hello from hyco-ws", b"\x00\xffbinary\x80", payload("binary", 70000)):
            hyco_ws_listener.send(cmd="send", **send_command(message))
            assert digest(conn.recv(timeout=TIMEOUT)) == digest(message)


def test_hyco_ws_listener_picks_the_first_offered_subprotocol(
    hyco_ws_listener: NodePeer, client: HybridConnectionClient
) -> None:
    # hyco-ws takes the first protocol of the accept's Sec-WebSocket-Protocol for its
    # rendezvous handshake (HybridConnectionWebSocketServer.js:268-269).
    with client.connect(subprotocols=["chat.v2", "chat.v1"], timeout=TIMEOUT) as conn:
        assert conn.subprotocol == "chat.v2"
        conn.send("with a subprotocol")
        assert conn.recv(timeout=TIMEOUT) == "with a subprotocol"
    assert hyco_ws_listener.wait_for("open")["protocol"] == "chat.v2"


# ------------------------------------------------------------------------------------------
# 2. hybridconn listener <-> hyco-ws sender


@pytest.fixture
def echo_listener(relay: Any) -> Iterator["queue.Queue[Tuple[Any, ...]]"]:
    """A hybridconn listener echoing every message; reports each connection's end on a queue."""
    ended: "queue.Queue[Tuple[Any, ...]]" = queue.Queue()
    listener = HybridConnectionListener.from_connection_string(relay.connection_string("hc1"))

    @listener.on_connection
    def echo(conn: Any) -> None:
        try:
            for message in conn:
                conn.send(message)
            ended.put(("closed", conn.close_code, conn.close_reason))
        except ConnectionClosed as exc:
            ended.put(("error", exc.code, exc.reason))

    listener.open(timeout=TIMEOUT)
    try:
        yield ended
    finally:
        listener.close(timeout=10)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_hybridconn_listener_echoes_hyco_ws_sender(
    relay: Any, echo_listener: Any, start_peer: Any, kind: str, size: int
) -> None:
    sender = start_hyco_ws_sender(relay, start_peer)
    message = payload(kind, size)
    sender.send(cmd="send", **send_command(message))
    echoed = event_message(sender.wait_for("message", timeout=TIMEOUT))
    assert digest(echoed) == digest(message)


@pytest.mark.parametrize("code,reason", CLOSES)
def test_hyco_ws_sender_close_code_reaches_hybridconn_listener(
    relay: Any, echo_listener: Any, start_peer: Any, code: int, reason: str
) -> None:
    sender = start_hyco_ws_sender(relay, start_peer)
    sender.send(cmd="send", text="before close")
    assert event_message(sender.wait_for("message")) == "before close"
    sender.send(cmd="close", code=code, reason=reason)
    how, seen_code, seen_reason = echo_listener.get(timeout=TIMEOUT)
    assert (seen_code, seen_reason) == (code, reason), how
    closed = sender.wait_for("close")
    assert (closed["code"], closed["reason"]) == (code, reason)


@pytest.mark.parametrize("code,reason", CLOSES)
def test_hybridconn_listener_close_code_reaches_hyco_ws_sender(
    relay: Any, start_peer: Any, code: int, reason: str
) -> None:
    with HybridConnectionListener.from_connection_string(relay.connection_string("hc1")) as listener:
        listener.open(timeout=TIMEOUT)
        sender = start_hyco_ws_sender(relay, start_peer)
        conn = listener.accept_connection(timeout=TIMEOUT)
        assert conn is not None
        with conn:
            sender.send(cmd="send", text="hello listener")
            assert conn.recv(timeout=TIMEOUT) == "hello listener"
            conn.close(code, reason, timeout=TIMEOUT)
        closed = sender.wait_for("close")
        assert (closed["code"], closed["reason"]) == (code, reason)
        assert (conn.close_code, conn.close_reason) == (code, reason)


def test_hybridconn_listener_sees_hyco_ws_sender_connect(relay: Any, start_peer: Any) -> None:
    """What the accepted connection shows of a relayedConnect sender."""
    with HybridConnectionListener.from_connection_string(relay.connection_string("hc1")) as listener:
        listener.open(timeout=TIMEOUT)
        start_hyco_ws_sender(relay, start_peer)
        conn = listener.accept_connection(timeout=TIMEOUT)
        assert conn is not None
        with conn:
            assert conn.path in ("", "/")
            # ws 1.1.5 sends Sec-WebSocket-Key = base64("13-" + Date.now()) (hyco-ws's ws, WebSocket.js).
            key = {k.lower(): v for k, v in conn.headers.items()}.get("sec-websocket-key")
            assert key
            # The token never reaches the listener.
            assert not any("servicebusauthorization" == k.lower() for k in conn.headers)


# ------------------------------------------------------------------------------------------
# 5a. hyco-ws listener <-> hyco-ws sender, nothing of ours on either end


@pytest.mark.parametrize("kind,size", [("text", 0), ("text", 126), ("binary", 65537), ("binary", 1024 * 1024)])
def test_hyco_ws_listener_echoes_hyco_ws_sender(
    relay: Any, hyco_ws_listener: NodePeer, start_peer: Any, kind: str, size: int
) -> None:
    sender = start_hyco_ws_sender(relay, start_peer)
    message = payload(kind, size)
    sender.send(cmd="send", **send_command(message))
    assert digest(event_message(sender.wait_for("message", timeout=TIMEOUT))) == digest(message)
    seen = hyco_ws_listener.wait_for("message")
    assert {k: seen[k] for k in ("binary", "size", "sha256")} == digest(message)


@pytest.mark.parametrize("initiator", ["sender", "listener"])
def test_close_code_between_two_hyco_ws_peers(
    relay: Any, hyco_ws_listener: NodePeer, start_peer: Any, initiator: str
) -> None:
    sender = start_hyco_ws_sender(relay, start_peer)
    sender.send(cmd="send", text="ping")
    assert event_message(sender.wait_for("message")) == "ping"
    closer = sender if initiator == "sender" else hyco_ws_listener
    closer.send(cmd="close", code=4321, reason=f"{initiator} closes")
    for peer in (sender, hyco_ws_listener):
        closed = peer.wait_for("close")
        assert (closed["code"], closed["reason"]) == (4321, f"{initiator} closes")


def test_many_hyco_ws_senders_share_one_hyco_ws_listener(
    relay: Any, hyco_ws_listener: NodePeer, start_peer: Any
) -> None:
    senders: List[NodePeer] = [start_hyco_ws_sender(relay, start_peer) for _ in range(4)]
    for index, sender in enumerate(senders):
        sender.send(cmd="send", text=f"sender {index}")
    for index, sender in enumerate(senders):
        assert event_message(sender.wait_for("message")) == f"sender {index}"
