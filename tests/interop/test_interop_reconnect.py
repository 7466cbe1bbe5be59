"""The Node listeners against the emulator's faults: a dropped control channel and a refusing relay.

What the emulator does here is what the service does (close frame or lost connection, 503 on
listen); the Node listeners' own reconnect logic must bring them back, exactly once.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from hybridconn import HybridConnectionClient
from hybridconn.addresses import listen_url
from tests.support.node_peers import NodePeer, peer_args, requires_node

pytestmark = [pytest.mark.interop, requires_node]

TIMEOUT = 20.0
SCRIPTS = {"hyco-ws": "ws_listener.js", "hyco-https": "https_listener.js"}


def start_listener(relay: Any, start_peer: Any, kind: str) -> NodePeer:
    peer = start_peer(SCRIPTS[kind], *peer_args(uri=listen_url(relay.namespace, "hc1"), hc="hc1"))
    peer.wait_for("listening", timeout=TIMEOUT)
    assert relay.wait_for_listeners("hc1", count=1, timeout=10)
    return peer


def assert_serves(relay: Any, kind: str) -> None:
    with HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as client:
        if kind == "hyco-ws":
            with client.connect(timeout=TIMEOUT) as conn:
                conn.send("after the drop")
                assert conn.recv(timeout=TIMEOUT) == "after the drop"
        else:
            response = client.request("GET", "/echo?after=drop", timeout=TIMEOUT)
            assert response.status_code == 200
            assert response.json()["query"] == {"after": "drop"}


@pytest.mark.parametrize("code", [None, 1011, 1001], ids=["abrupt", "close-1011", "close-1001"])
@pytest.mark.parametrize("kind", list(SCRIPTS))
def test_node_listener_comes_back_after_a_dropped_control_channel(
    relay: Any, start_peer: Any, kind: str, code: Optional[int]
) -> None:
    peer = start_listener(relay, start_peer, kind)
    assert relay.drop_control_channels("hc1", code=code) == 1
    # hyco-ws reconnects at once (HybridConnectionWebSocketServer.js:134-143); hyco-https
    # after 0 s, the first entry of its delay table (HybridConnectionHttpsServer.js:319, 348-358).
    peer.wait_for("listening", timeout=TIMEOUT)
    assert relay.wait_for_listeners("hc1", count=1, timeout=10)
    assert_serves(relay, kind)
    assert relay.listener_count("hc1") == 1
    peer.assert_alive()


def test_hyco_https_listener_backs_off_while_the_relay_refuses(relay: Any, start_peer: Any) -> None:
    # Only hyco-https: hyco-ws retries a refused handshake without delay and doubles its
    # attempts each round (HybridConnectionWebSocketServer.js:122-143, onerror and onclose
    # both reconnect), which would flood the emulator for the whole refusal.
    peer = start_listener(relay, start_peer, "hyco-https")
    relay.refuse_listeners("hc1", seconds=1.5, status=503)
    relay.drop_control_channels("hc1", code=1011)
    error = peer.wait_for("error", timeout=TIMEOUT)
    assert "503" in error["message"]
    peer.wait_for("listening", timeout=TIMEOUT)
    assert relay.wait_for_listeners("hc1", count=1, timeout=10)
    assert_serves(relay, "hyco-https")
    # Retries at 0, 1, 2 s...: a handful of refusals, not a storm.
    assert 1 <= len(peer.events("error")) <= 4
