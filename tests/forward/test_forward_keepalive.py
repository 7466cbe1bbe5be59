"""Keep-alive on idle tunnels: unsolicited pongs at the configured interval, both directions, no data."""

from __future__ import annotations

import socket
import time

from hybridconn.forward import LocalForwarder, RemoteForwarder
from tests.support.measure import wait_until
from tests.support.tcp_echo import EchoServer, echo_roundtrip


def test_an_idle_local_tunnel_sends_pongs_at_the_interval_and_stays_usable(cs: str, echo: EchoServer) -> None:
    # Pongs are per hop (the relay, like the emulator, swallows them): they keep *our* hop to the
    # relay busy, which is what its idle drop looks at. So they are counted where they are sent.
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port, keepalive_interval=None).start(
        timeout=15
    )
    local = LocalForwarder.from_connection_string(cs, 0, keepalive_interval=0.2, connect_timeout=15).start()
    try:
        with socket.create_connection(local.address, timeout=15) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            deadline = time.monotonic() + 20
            while local.keepalive.sent < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert local.keepalive.sent >= 4, "no keep-alive pongs on an idle tunnel"
            assert remote.keepalive.sent == 0  # None: off
            sock.sendall(b"y")
            assert sock.recv(1) == b"y"
        assert wait_until(lambda: local.active_connections == 0)
        before = local.keepalive.sent
        time.sleep(0.5)
        assert local.keepalive.sent == before, "pongs went on after the tunnel closed"
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)


def test_remote_side_sends_pongs_and_the_tunnel_still_works(cs: str, echo: EchoServer) -> None:
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port, keepalive_interval=0.2).start(
        timeout=15
    )
    local = LocalForwarder.from_connection_string(cs, 0, keepalive_interval=None, connect_timeout=15).start()
    try:
        with socket.create_connection(local.address, timeout=15) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            deadline = time.monotonic() + 20
            while remote.keepalive.sent < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert remote.keepalive.sent >= 4
            sock.sendall(b"still here")  # pongs are ignored by the peer: the byte stream is untouched
            got = b""
            while len(got) < 10:
                got += sock.recv(10)
            assert got == b"still here"
        sent, received, count = echo_roundtrip(local.address, 10_000, seed=1)
        assert sent == received and count == 10_000
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)
