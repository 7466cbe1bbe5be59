"""``RelayEmulator(ws_relay="poll")``: one thread relays every WebSocket's frames (frame_relay.py).

The relay's own semantics (frames, fragments, pings, closes both ways, a half-close, a socket
lost) are the threaded pump's: tests/emulator/test_emulator_websocket.py runs on both. Here: what
only the poll relay has - one thread for many connections, its timers (idle drop), stopping
while it relays, TLS sockets staying on their threads - and its choice being checked.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest
import websocket

from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.fidelity import Fidelity
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, shut, token

RELAY_THREAD = "hybridconn-emulator-frame-relay"


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "response_timeout": 10.0, "accept_timeout": 10.0, "ws_relay": "poll"}


def _pair(relay: RelayEmulator, control: Control) -> Tuple[websocket.WebSocket, websocket.WebSocket]:
    """A relayed WebSocket: (the sender's end, the listener's end)."""
    url = hc_url(relay, "hc1", "connect")
    call = BackgroundCall(open_ws, url, [f"ServiceBusAuthorization: {token(relay)}"])
    accept = control.recv_json()["accept"]
    listener = open_ws(accept["address"])
    return call.join(), listener


def _relay_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name == RELAY_THREAD]


def test_one_thread_relays_many_websockets_byte_exact(relay: RelayEmulator, control: Control) -> None:
    pairs = [_pair(relay, control) for _ in range(30)]
    try:
        assert _relay_threads() == [RELAY_THREAD]
        sent = {n: [os.urandom(size) for size in (1, 125, 126, 4096, 65536)] for n in range(len(pairs))}
        for n, (sender, _) in enumerate(pairs):  # everything in flight at once, then read back
            for blob in sent[n]:
                sender.send_binary(blob)
        for n, (sender, listener) in enumerate(pairs):
            for blob in sent[n]:
                assert listener.recv_data() == (websocket.ABNF.OPCODE_BINARY, blob)
                listener.send(blob.hex()[:64] or "-")
            for blob in sent[n]:
                assert sender.recv() == (blob.hex()[:64] or "-")
    finally:
        for sender, listener in pairs:  # no close handshakes: 30 of them, one after another, take a minute
            sender.shutdown()
            listener.shutdown()


@pytest.mark.parametrize("relay_emulator_options", [{
    "hybrid_connections": ["hc1"], "ws_relay": "poll", "fidelity": Fidelity(idle_timeout=1.0),
}])
def test_an_idle_relayed_websocket_is_dropped_by_the_relays_timer(relay: RelayEmulator, control: Control) -> None:
    sender, listener = _pair(relay, control)
    started = time.monotonic()
    try:
        sender.send("one")
        assert listener.recv() == "one"
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            listener.settimeout(30)
            listener.recv()  # nothing arrives: the idle drop ends it (no close frame, as a load balancer)
        assert time.monotonic() - started < 25
    finally:
        shut(sender)
        shut(listener)


def test_stop_while_relaying_returns_in_time_and_leaves_no_thread() -> None:
    relay = RelayEmulator(ws_relay="poll", accept_timeout=10.0).start()
    control = Control(relay)
    pairs = [_pair(relay, control) for _ in range(10)]
    try:
        started = time.monotonic()
        relay.stop(timeout=5.0)
        assert time.monotonic() - started < 15
        assert not [t.name for t in threading.enumerate() if t.name.startswith("hybridconn-emulator")]
        for sender, _ in pairs:
            sender.settimeout(10)
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
                sender.recv()
    finally:
        control.close()
        for sender, listener in pairs:
            sender.shutdown()
            listener.shutdown()
        relay.close()


def test_tls_websockets_keep_their_threads() -> None:
    with RelayEmulator(tls="self-signed", ws_relay="poll") as relay:
        ssl_options = {"ca_certs": relay.certificate_path}
        tok = token(relay)
        control = websocket.create_connection(hc_url(relay, "hc1", "listen"),
                                              header=[f"ServiceBusAuthorization: {tok}"], sslopt=ssl_options,
                                              timeout=10)
        sender = listener = None
        try:
            call = BackgroundCall(websocket.create_connection, hc_url(relay, "hc1", "connect"),
                                  header=[f"ServiceBusAuthorization: {tok}"], sslopt=ssl_options, timeout=10)
            import json

            accept = json.loads(control.recv())["accept"]
            listener = websocket.create_connection(accept["address"], sslopt=ssl_options, timeout=10)
            sender = call.join()
            sender.send("over tls")
            assert listener.recv() == "over tls"
            assert _relay_threads() == []  # a selector cannot see TLS's buffered bytes: pump threads
        finally:
            shut(sender)
            shut(listener)
            shut(control)


def test_an_unknown_ws_relay_is_refused() -> None:
    with pytest.raises(ValueError, match="ws_relay must be one of 'threads', 'poll'"):
        RelayEmulator(ws_relay="epoll")
