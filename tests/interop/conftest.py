"""Fixtures for the Node interop tests: an emulator per test and Node peers reaped after it.

The tests skip (with the reason) when node or tests/interop/node_modules is missing;
see tests.support.node_peers.SKIP_REASON. Peers are stopped before the emulator, so hyco-ws's
reconnect storm (HybridConnectionWebSocketServer.js:122-143) never starts.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List

import pytest

from tests.support.node_peers import NodePeer

StartPeer = Callable[..., NodePeer]


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    """The ``relay`` fixture: a RelayEmulator on 127.0.0.1 (any port) with hybrid connections hc1 and hc2."""
    return {"hybrid_connections": ["hc1", "hc2"]}


@pytest.fixture
def start_peer() -> Iterator[StartPeer]:
    """``start_peer(script, *args)`` -> a running NodePeer, closed at teardown."""
    started: List[NodePeer] = []

    def start(script: str, *args: str) -> NodePeer:
        peer = NodePeer(script, args)
        started.append(peer)
        return peer

    yield start
    for peer in reversed(started):
        peer.close()
