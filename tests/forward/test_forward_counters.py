"""Per-forwarder counters: connections, bytes each way, errors; printed by the CLI on exit."""

from __future__ import annotations

import socket
from typing import Tuple

from hybridconn.forward import LocalForwarder, RemoteForwarder
from tests.support.measure import wait_until
from tests.support.tcp_echo import echo_roundtrip


def test_counters_add_up(forwarding: Tuple[LocalForwarder, RemoteForwarder], cs: str) -> None:
    local, remote = forwarding
    for seed in (1, 2):
        sent, received, count = echo_roundtrip(local.address, 70_000, seed=seed)
        assert sent == received and count == 70_000
    assert wait_until(lambda: local.counters["connections"] == 2 and remote.active_connections == 0)
    assert wait_until(lambda: remote.counters["bytes_up"] == 140_000)
    assert local.counters == {"connections": 2, "bytes_up": 140_000, "bytes_down": 140_000, "errors": 0}
    assert remote.counters == {"connections": 2, "bytes_up": 140_000, "bytes_down": 140_000, "errors": 0}
    wrong = LocalForwarder.from_connection_string(cs, 0, port_name="nosuch", connect_timeout=10).start()
    try:
        with socket.create_connection(wrong.address, timeout=15) as sock:
            sock.settimeout(15)
            assert sock.recv(1) == b""  # an unknown port name: the local connection is closed
        assert wait_until(lambda: wrong.counters["errors"] == 1)
        assert wait_until(lambda: remote.counters["errors"] == 1)
    finally:
        wrong.close(timeout=10)
