"""close(timeout) returns within timeout + 1 s on every path, even when the relay never answers.

A *silent relay* completes WebSocket handshakes and then never reads or writes again, so every
close frame the listener sends goes unanswered and every send eventually blocks: the worst
network a listener can be closed on. Accept addresses with ``hang=1`` are never answered at all
(a handshake stuck in progress).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import List, Optional

import pytest
from wsproto.utilities import generate_accept_token

from hybridconn import HybridConnectionListener, RelayedRequest, RelayedResponse

#: close() may overrun its timeout by at most this much (thread joins, socket shutdowns).
SLACK = 1.0


def _frame(text: str) -> bytes:
    payload = text.encode()
    head = bytes([0x81])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


class SilentRelay:
    """Answers WebSocket upgrades with 101 and then goes silent (``hang=1``: never answers)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.namespace = f"ws://127.0.0.1:{self.port}"
        self.control: Optional[socket.socket] = None
        self.control_ready = threading.Event()
        self.upgrades: List[str] = []
        self.hanging = threading.Semaphore(0)
        self._socks: List[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, name="test-silent-relay", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), name="test-silent-relay-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
        except OSError:
            return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "hang=1" in target:
            self.hanging.release()
            return  # never answered: the handshake stays in progress
        accept = generate_accept_token(headers["sec-websocket-key"].encode()).decode()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self.upgrades.append(target)
        if "sb-hc-action=listen" in target:
            self.control = sock
            self.control_ready.set()

    def address(self, action: str, key: str, hang: bool = False) -> str:
        return f"{self.namespace}/$hc/hc1?sb-hc-action={action}&sb-hc-id={key}" + ("&hang=1" if hang else "")

    def send(self, message: dict) -> None:
        assert self.control is not None
        self.control.sendall(_frame(json.dumps(message)))

    def accept(self, key: str, hang: bool = False) -> None:
        self.send({"accept": {"address": self.address("accept", key, hang), "id": key,
                              "connectHeaders": {"Sec-WebSocket-Key": "x"}}})

    def request(self, key: str) -> None:
        self.send({"request": {"address": self.address("request", key), "id": key, "method": "GET",
                               "requestTarget": "/hc1/", "requestHeaders": {}, "body": False}})

    def upgraded(self, action: str) -> int:
        return sum(1 for target in self.upgrades if f"sb-hc-action={action}" in target)

    def close(self) -> None:
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        try:
            self._server.close()
        finally:
            for sock in self._socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._thread.join(5)


@pytest.fixture
def silent_relay():  # type: ignore[no-untyped-def]
    relay = SilentRelay()
    yield relay
    relay.close()


def _wait_for(condition, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _open(relay: SilentRelay, **options) -> HybridConnectionListener:  # type: ignore[no-untyped-def]
    listener = HybridConnectionListener(relay.namespace, "hc1", None, ping_interval=60, **options)
    listener.open(timeout=10)
    assert relay.control_ready.wait(10)
    return listener


def _timed_close(listener: HybridConnectionListener, timeout: float) -> "tuple[bool, float]":
    started = time.monotonic()
    stopped = listener.close(timeout=timeout)
    return stopped, time.monotonic() - started


def test_close_with_a_full_accept_queue_on_a_silent_relay(silent_relay: SilentRelay) -> None:
    listener = _open(silent_relay, max_pending=6)
    for number in range(6):
        silent_relay.accept(f"queued-{number}")
    assert _wait_for(lambda: silent_relay.upgraded("accept") == 6)
    assert _wait_for(lambda: listener.stats["accepted"] == 6)
    stopped, took = _timed_close(listener, 2.0)
    assert took <= 2.0 + SLACK, took
    assert listener.state == "closed"
    assert stopped


def test_close_with_a_hung_handler_returns_false_in_time(silent_relay: SilentRelay) -> None:
    release = threading.Event()
    entered = threading.Event()
    listener = _open(silent_relay, max_workers=2)

    @listener.on_request
    def hang(request: RelayedRequest) -> RelayedResponse:
        entered.set()
        release.wait(30)
        return RelayedResponse(status=204)

    silent_relay.request("r1")
    assert entered.wait(10)
    try:
        stopped, took = _timed_close(listener, 2.0)
        assert took <= 2.0 + SLACK, took
        assert stopped is False  # the handler is still running, and close() says so
        assert listener.state == "closed"
    finally:
        release.set()
        assert _wait_for(lambda: listener.stats["in_flight"] == 0)


def test_close_with_handshakes_stuck_in_progress(silent_relay: SilentRelay) -> None:
    listener = _open(silent_relay, connect_timeout=30)
    for number in range(3):
        silent_relay.accept(f"stuck-{number}", hang=True)
    for _ in range(3):
        assert silent_relay.hanging.acquire(timeout=10)
    stopped, took = _timed_close(listener, 2.0)
    assert took <= 2.0 + SLACK, took
    assert listener.state == "closed"
    assert stopped


@pytest.mark.parametrize("timeout", [0.0, 0.5])
def test_close_with_a_tiny_timeout_still_returns_in_time(silent_relay: SilentRelay, timeout: float) -> None:
    listener = _open(silent_relay, max_pending=4)
    for number in range(4):
        silent_relay.accept(f"tiny-{number}")
    assert _wait_for(lambda: listener.stats["accepted"] == 4)
    _, took = _timed_close(listener, timeout)
    assert took <= timeout + SLACK, took
    assert listener.state == "closed"
