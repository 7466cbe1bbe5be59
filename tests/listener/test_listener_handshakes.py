"""close() while handshakes stall: a reconnect, an accept and a request rendezvous each wait on a relay
that took the TCP connection and never answers (a CONNECT proxy that holds new tunnels). close() ends
them instead of waiting out connect_timeout, and no thread is left (the autouse leak check)."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable, List

import pytest

from hybridconn import HybridConnectionError, RelayedResponse
from hybridconn.auth import AUTH_HEADER
from hybridconn.listener import HybridConnectionListener
from tests.support.endpoints import StatusLog
from tests.support.plain_clients import Sender
from tests.support.proxy import ConnectProxy


Make = Callable[..., HybridConnectionListener]


def _listener_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hybridconn-") and "hc1" in t.name]


def test_close_ends_a_stalled_reconnect(relay: Any, make_listener: Make, proxy: ConnectProxy) -> None:
    listener = make_listener(open=False, proxy=proxy.url, backoff=(0,), connect_timeout=60)
    events = StatusLog(listener)
    listener.open(timeout=15)
    proxy.hold()
    relay.drop_control_channels("hc1")
    assert events.offline.wait(15)
    assert proxy.held.acquire(timeout=15)  # the reader is in its reconnect handshake
    listener.close(timeout=3)
    assert listener.state == "closed"
    assert _listener_threads() == []


def test_close_ends_a_stalled_accept(relay: Any, make_listener: Make, sender: Sender, proxy: ConnectProxy) -> None:
    listener = make_listener(open=False, proxy=proxy.url, connect_timeout=60)
    listener.on_connection = lambda conn: None
    listener.open(timeout=15)
    proxy.hold()
    # A sender's upgrade request on a plain socket, so the test can drop it instead of waiting
    # out the relay's accept timeout.
    host, port = relay.namespace.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall((f"GET /$hc/hc1?sb-hc-action=connect HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"{AUTH_HEADER}: {sender.token()}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        assert proxy.held.acquire(timeout=15)  # a pool thread is in the accept handshake
        listener.close(timeout=3)
        assert _listener_threads() == []


def test_close_ends_a_stalled_request_rendezvous(make_listener: Make, sender: Sender, proxy: ConnectProxy) -> None:
    listener = make_listener(open=False, proxy=proxy.url, connect_timeout=60)
    listener.on_request = lambda req: RelayedResponse(body=b"never")
    listener.open(timeout=15)
    proxy.hold()
    answers: List[Any] = []

    def post() -> None:
        try:
            answers.append(sender.request("POST", "/big", data=os.urandom(100_000), timeout=40))
        except Exception as exc:  # noqa: BLE001
            answers.append(exc)

    client = threading.Thread(target=post)
    client.start()
    try:
        assert proxy.held.acquire(timeout=15)  # a rendezvous reader is in its handshake
        listener.close(timeout=3)
        assert _listener_threads() == []
    finally:
        client.join(45)
    assert answers and getattr(answers[0], "status_code", 0) != 200


def test_handshakes_after_close_fail_at_once() -> None:
    from hybridconn._transport import HandshakeSet, open_websocket

    handshakes = HandshakeSet()
    assert handshakes.abort_all() == 0
    with pytest.raises(HybridConnectionError, match="cancelled"):
        open_websocket("ws://127.0.0.1:9/", timeout=30, handshakes=handshakes)
