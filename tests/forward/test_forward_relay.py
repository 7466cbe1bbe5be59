"""Port forwarding end to end through the relay emulator, with real TCP echo servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from typing import List, Tuple

import pytest

from hybridconn import HybridConnection, HybridConnectionClient, HybridConnectionListener
from hybridconn.exceptions import ConnectionClosed
from hybridconn.forward import LocalForwarder, RemoteForwarder
from hybridconn.forward.preamble import encode_preamble
from tests.support.sockets import free_port
from tests.support.tcp_echo import EchoServer, echo_roundtrip, run_concurrent

HC = "fwd"
Pair = Tuple[LocalForwarder, RemoteForwarder]


def assert_all_exact(results: List[object]) -> None:
    failures = [r for r in results if r is not None]
    assert not failures, f"{len(failures)} of {len(results)} connections failed, first: {failures[0]!r}"


def recv_all(sock: socket.socket, reset_ok: bool = False) -> bytes:
    """Everything until EOF (the socket's own timeout bounds each read).

    ``reset_ok``: a reset also ends the stream (a connection dropped with our
    unread bytes in its buffer is reset by the kernel, as azbridge's is).
    """
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            if not reset_ok:
                raise
            data = b""
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_one_connection_echoes(forwarding: Pair) -> None:
    local, remote = forwarding
    with socket.create_connection(local.address, timeout=10) as sock:
        sock.sendall(b"hello through the relay")
        assert sock.recv(100) == b"hello through the relay"
    sent, received, count = echo_roundtrip(local.address, 300_000, seed=1)
    assert count == 300_000 and sent == received


def test_concurrent_connections_are_byte_exact(forwarding: Pair) -> None:
    local, remote = forwarding
    assert_all_exact(run_concurrent(local.address, connections=20, size=1_000_000, timeout=90))
    assert local.connections_total == 20


@pytest.mark.stress
@pytest.mark.timeout(1800)
def test_stress_100_connections_10_mb_each(cs: str, echo: EchoServer) -> None:
    # On a busy 2-core box the last connections wait long for CPU: generous timeouts.
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port, connect_timeout=120).start(timeout=30)
    local = LocalForwarder.from_connection_string(cs, 0, connect_timeout=300).start()
    try:
        started = time.monotonic()
        assert_all_exact(run_concurrent(local.address, connections=100, size=10_000_000, timeout=1500))
        elapsed = time.monotonic() - started
        print(f"100 x 10 MB echoed in {elapsed:.1f} s: {1000 / elapsed:.1f} MB/s each way")
        assert local.connections_total == 100 and echo.accepted == 100
    finally:
        local.close()
        remote.close()


def test_refused_target_closes_the_local_connection_promptly(cs: str) -> None:
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", free_port()).start(timeout=10)
    local = LocalForwarder.from_connection_string(cs, 0, connect_timeout=10).start()
    try:
        with socket.create_connection(local.address, timeout=10) as sock:
            sock.sendall(b"anyone there?")
            assert recv_all(sock) == b""  # EOF, well within the socket timeout
    finally:
        local.close()
        remote.close()


def test_restarted_forwarders_serve_new_connections(cs: str, echo: EchoServer) -> None:
    port = free_port()
    for _ in range(2):
        remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port).start(timeout=10)
        local = LocalForwarder.from_connection_string(cs, port, connect_timeout=10).start()
        try:
            sent, received, count = echo_roundtrip(("127.0.0.1", port), 100_000, seed=7)
            assert count == 100_000 and sent == received
        finally:
            local.close()
            remote.close()
    # and a local forwarder restarted alone, against a remote that kept running
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port).start(timeout=10)
    try:
        for _ in range(2):
            with LocalForwarder.from_connection_string(cs, port, connect_timeout=10) as local:
                sent, received, count = echo_roundtrip(local.address, 50_000, seed=8)
                assert count == 50_000 and sent == received
    finally:
        remote.close()


def test_target_eof_reaches_the_client_after_all_data(cs: str) -> None:
    """The target sends a greeting and closes (HTTP/1.0 style): all of it arrives, then EOF."""
    greeting = bytes(range(256)) * 1000
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(greeting)

    thread = threading.Thread(target=serve, name="test-greeter", daemon=True)
    thread.start()
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", server.getsockname()[1]).start(timeout=10)
    local = LocalForwarder.from_connection_string(cs, 0, connect_timeout=10).start()
    try:
        with socket.create_connection(local.address, timeout=10) as sock:
            assert recv_all(sock) == greeting
    finally:
        local.close()
        remote.close()
        thread.join(10)
        server.close()


def test_several_ports_share_one_listener(cs: str) -> None:
    with EchoServer() as first, EchoServer() as second:
        remote = RemoteForwarder.from_connection_string(
            cs, targets={"one": ("127.0.0.1", first.port), "two": ("127.0.0.1", second.port)}
        ).start(timeout=10)
        try:
            with (
                LocalForwarder.from_connection_string(cs, 0, port_name="one") as to_one,
                LocalForwarder.from_connection_string(cs, 0, port_name="two") as to_two,
                LocalForwarder.from_connection_string(cs, 0, port_name="three") as to_nothing,
            ):
                for forwarder in (to_one, to_two):
                    with socket.create_connection(forwarder.address, timeout=10) as sock:
                        sock.sendall(b"x")
                        assert sock.recv(10) == b"x"
                with socket.create_connection(to_nothing.address, timeout=10) as sock:
                    assert recv_all(sock, reset_ok=True) == b""  # unknown name: closed without a reply
            assert (first.accepted, second.accepted) == (1, 1)
        finally:
            remote.close()


# ------------------------------------------------------------ the remote side's answers, byte by byte


def _reply_to(client: HybridConnectionClient, chunks: List[bytes]) -> Tuple[bytes, HybridConnection]:
    conn = client.connect(timeout=10)
    for chunk in chunks:
        conn.send(chunk)
    received = b""
    try:
        while len(received) < 3:
            received += conn.recv(timeout=10)
    except ConnectionClosed:
        pass
    return received, conn


@pytest.mark.parametrize(
    "chunks, reply",
    [
        ([bytes([b]) for b in encode_preamble("16161")], b"\x01\x00\x00"),  # split at every byte, numeric fallback
        ([b"\x01\x00\x00\x02", b"22"], b"\x01\x00\x00"),  # C# style: header, then name
        ([bytes.fromhex("02 00 00 01 78")], b"\x00\x00\x00"),  # version 2.0
        ([bytes.fromhex("01 00 05 01 78")], b"\x00\x00\x00"),  # unknown mode
        ([encode_preamble("22", mode=1)], b"\x00\x00\xff"),  # datagram to a stream port
        ([bytes.fromhex("01 00 00 05 35 30 30 30 55")], b""),  # "5000U": not numeric, unknown -> close, no reply
    ],
)
def test_remote_answers_preambles_as_azbridge(cs: str, echo: EchoServer, chunks: List[bytes], reply: bytes) -> None:
    remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port, port_name="22").start(timeout=10)
    client = HybridConnectionClient.from_connection_string(cs)
    try:
        received, conn = _reply_to(client, chunks)
        with conn:
            assert received == reply
            if reply == b"\x01\x00\x00":
                conn.send(b"payload")
                assert conn.recv(timeout=10) == b"payload"
            else:
                with pytest.raises(ConnectionClosed):
                    conn.recv(timeout=10)
    finally:
        client.close()
        remote.close()


# ------------------------------------------------------------ the local side on the wire


def test_local_side_wire_format(cs: str) -> None:
    """Preamble first, reply awaited, then data in 1..64 KiB binary messages, EOF as close 1000."""
    listener = HybridConnectionListener.from_connection_string(cs)
    seen: List[object] = []
    finished = threading.Event()

    @listener.on_connection
    def peer(conn: HybridConnection) -> None:
        try:
            preamble = b""
            while len(preamble) < 8:
                preamble += conn.recv(timeout=10)
            seen.append(preamble)
            conn.send(b"\x01\x00\x00")
            while True:
                seen.append(conn.recv(timeout=10))
        except ConnectionClosed:
            seen.append(conn.close_code)
        finally:
            conn.close()
            finished.set()

    listener.open(timeout=10)
    local = LocalForwarder.from_connection_string(cs, 0, port_name="sql1", connect_timeout=10).start()
    try:
        payload = bytes(range(256)) * 4096  # 1 MiB
        with socket.create_connection(local.address, timeout=10) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            assert finished.wait(20)
    finally:
        local.close()
        listener.close(timeout=10)
    assert seen[0] == bytes.fromhex("01 00 00 04 73 71 6C 31")
    data = seen[1:-1]
    assert all(isinstance(m, bytes) and 1 <= len(m) <= 65536 for m in data)
    assert b"".join(data) == payload  # type: ignore[arg-type]
    assert seen[-1] == 1000


@pytest.mark.parametrize("answer", [b"\x00\x00\xff", b"\x00\x00\x00", b"\x01\x00\x01", None])
def test_local_side_drops_the_connection_on_a_rejection(cs: str, answer: object) -> None:
    listener = HybridConnectionListener.from_connection_string(cs)

    @listener.on_connection
    def peer(conn: HybridConnection) -> None:
        with conn:
            conn.recv(timeout=10)
            if answer is not None:
                conn.send(answer)  # type: ignore[arg-type]

    listener.open(timeout=10)
    local = LocalForwarder.from_connection_string(cs, 0, connect_timeout=10).start()
    try:
        with socket.create_connection(local.address, timeout=10) as sock:
            sock.sendall(b"data")
            assert recv_all(sock, reset_ok=True) == b""
    finally:
        local.close()
        listener.close(timeout=10)


@pytest.mark.parametrize("size", [1_000_000])
def test_a_half_closed_echo_loses_nothing(forwarding: Pair, size: int) -> None:
    """shutdown(SHUT_WR) then read: the whole echo comes back, hybridconn forwarding on both ends.

    The close travels client -> emulator -> remote forwarder without being
    answered on the way, so the echo server's answer, sent after its EOF, still
    flows back; its EOF answers the close. (Before the relay passed closes on,
    130-860 kB of the 1 MB came back, silently.)
    """
    local, remote = forwarding
    payload = bytes((i * 7 + i // 256) % 256 for i in range(size))
    with socket.create_connection(local.address, timeout=30) as sock:
        writer = threading.Thread(
            target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)), name="test-half-close-writer"
        )
        writer.start()  # read while writing: the echo must not back up into our send
        echoed = recv_all(sock)
        writer.join(30)
    assert not writer.is_alive()
    assert len(echoed) == size and echoed == payload
