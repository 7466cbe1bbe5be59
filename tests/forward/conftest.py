"""Fixtures for the forwarding tests: the relay emulator, a TCP echo server, a forwarder pair."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

import pytest

from hybridconn.emulator import RelayEmulator
from hybridconn.forward import LocalForwarder, RemoteForwarder
from tests.support.tcp_echo import EchoServer

HC = "fwd"


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": [HC]}


@pytest.fixture
def cs(relay: RelayEmulator) -> str:
    return relay.connection_string(HC)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def forwarding(cs: str, echo: EchoServer) -> Iterator[Tuple[LocalForwarder, RemoteForwarder]]:
    """-R fwd:127.0.0.1:<echo> and -L 127.0.0.1:0:fwd, both started."""
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port).start(timeout=10)
    local = LocalForwarder.from_connection_string(cs, 0, connect_timeout=10).start()
    try:
        yield local, remote
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)
