"""Unix domain sockets on either side of a forward (azbridge: a socket path instead of a port)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from hybridconn.commands.forward import parse_local, parse_remote
from hybridconn.forward import LocalForwarder, RemoteForwarder
from tests.support.tcp_echo import EchoServer

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix domain sockets here")


class UnixEcho:
    """An echo server on a Unix socket, one thread per connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="test-unix-echo", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._echo, args=(conn,), name="test-unix-echo-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return  # the forwarder closed its end

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.server.close()


@pytest.fixture
def unix_echo(tmp_path: Path) -> Iterator[UnixEcho]:
    echo = UnixEcho(str(tmp_path / "echo.sock"))
    yield echo
    echo.close()


def _roundtrip(sock: socket.socket, size: int) -> bytes:
    """Send ``size`` bytes while reading the echo back (no half-close: see hybridconn.forward.pump)."""
    data = bytes(i % 251 for i in range(size))
    sender = threading.Thread(target=sock.sendall, args=(data,), name="test-unix-send", daemon=True)
    sender.start()
    got = bytearray()
    while len(got) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    sender.join(30)
    assert bytes(got) == data
    return bytes(got)


def test_specs_with_socket_paths() -> None:
    assert parse_local("/run/app.sock:hc") == ("/run/app.sock", 0, "hc", None)
    assert parse_local("/run/app.sock:hc/name") == ("/run/app.sock", 0, "hc", "name")
    assert parse_remote("hc:/run/app.sock") == ("hc", None, "/run/app.sock", 0)
    assert parse_remote("hc/name:/run/app.sock") == ("hc", "name", "/run/app.sock", 0)


def test_local_unix_socket_to_remote_unix_socket(cs: str, unix_echo: UnixEcho, tmp_path: Path) -> None:
    path = str(tmp_path / "local.sock")
    remote = RemoteForwarder.from_connection_string(cs, targets={path: (unix_echo.path, 0)}).start(timeout=15)
    local = LocalForwarder.from_connection_string(cs, 0, bind_address=path, connect_timeout=15).start()
    try:
        assert local.port_name == path  # azbridge names a socket forward by its path
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(30)
            client.connect(path)
            _roundtrip(client, 300_000)
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)
    assert not Path(path).exists(), "the local socket file was left behind"


def test_tcp_on_one_side_unix_on_the_other(cs: str, unix_echo: UnixEcho) -> None:
    remote = RemoteForwarder.from_connection_string(cs, unix_echo.path, 0, port_name="app").start(timeout=15)
    local = LocalForwarder.from_connection_string(cs, 0, port_name="app", connect_timeout=15).start()
    try:
        with socket.create_connection(local.address, timeout=30) as client:
            _roundtrip(client, 100_000)
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)


def test_unix_local_to_tcp_target(cs: str, echo: EchoServer, tmp_path: Path) -> None:
    path = str(tmp_path / "to-tcp.sock")
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port).start(timeout=15)
    local = LocalForwarder.from_connection_string(cs, 0, bind_address=path, port_name="1",
                                                  connect_timeout=15).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(30)
            client.connect(path)
            _roundtrip(client, 50_000)
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)
