"""UDP forwarding (preamble mode 1) through the emulator: sizes, order, 10,000 datagrams, azbridge's
byte vectors split at every byte, mode mismatches, idle expiry of routes."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Tuple

import pytest

from hybridconn.client import HybridConnectionClient
from hybridconn.forward import RemoteForwarder
from hybridconn.forward.datagram import MAX_DATAGRAM, DatagramReader, DatagramTooLarge, encode_datagram
from hybridconn.forward.preamble import MODE_DATAGRAM, MODE_STREAM, encode_preamble
from hybridconn.forward.udp import UdpLocalForwarder
from tests.support.measure import wait_until

#: The largest payload a UDP socket carries over IPv4 loopback.
UDP_MAX = 65507


class UdpEcho:
    """A UDP echo server on 127.0.0.1 (a real socket, one thread)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-udp-echo", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            self.sock.sendto(data, peer)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def udp_echo() -> Iterator[UdpEcho]:
    echo = UdpEcho()
    yield echo
    echo.close()


@pytest.fixture
def udp_pair(cs: str, udp_echo: UdpEcho) -> Iterator[Tuple[UdpLocalForwarder, RemoteForwarder]]:
    remote = RemoteForwarder.from_connection_string(cs, udp_targets={"5000U": ("127.0.0.1", udp_echo.port)},
                                                    udp_idle_timeout=30).start(timeout=15)
    local = UdpLocalForwarder.from_connection_string(cs, 0, port_name="5000U", connect_timeout=15).start()
    try:
        yield local, remote
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)


@pytest.fixture
def client_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(15)
    yield sock
    sock.close()


def test_azbridge_vectors() -> None:
    assert encode_preamble("5000U", MODE_DATAGRAM) == bytes.fromhex("01 00 01 05 35 30 30 30 55")
    assert encode_datagram(b"hi") == bytes.fromhex("00 02 68 69")
    assert encode_datagram(b"") == b"\x00\x00"
    assert encode_datagram(b"x" * MAX_DATAGRAM)[:2] == b"\xff\xff"
    with pytest.raises(DatagramTooLarge, match="65536-byte datagram"):
        encode_datagram(b"x" * (MAX_DATAGRAM + 1))


@pytest.mark.parametrize("split", range(0, 12))
def test_frames_split_at_every_byte_come_out_whole(split: int) -> None:
    stream = encode_datagram(b"hi") + encode_datagram(b"") + encode_datagram(b"abcd")
    reader = DatagramReader()
    out = reader.feed(stream[:split]) + reader.feed(stream[split:])
    assert out == [b"hi", b"", b"abcd"] and reader.pending == 0


def test_every_byte_on_its_own() -> None:
    reader = DatagramReader()
    out: List[bytes] = []
    for byte in encode_datagram(b"hello") + encode_datagram(b"x" * 300):
        out += reader.feed(bytes([byte]))
    assert out == [b"hello", b"x" * 300]


def test_sizes_0_1_1400_and_the_maximum_byte_exact_in_order(
        udp_pair: Tuple[UdpLocalForwarder, RemoteForwarder], client_socket: socket.socket) -> None:
    local, _ = udp_pair
    sizes = [0, 1, 1400, UDP_MAX, 1, 0, 1400]
    sent = [bytes((i + n) % 256 for n in range(size)) for i, size in enumerate(sizes)]
    for payload in sent:
        client_socket.sendto(payload, local.address)
        assert client_socket.recvfrom(70000)[0] == payload  # one at a time: exact and in order
    assert local.routes == 1


def test_10000_datagrams_loss_reported(udp_pair: Tuple[UdpLocalForwarder, RemoteForwarder],
                                       client_socket: socket.socket) -> None:
    local, _ = udp_pair
    total, window = 10_000, 32
    received: List[int] = []
    client_socket.settimeout(5)
    next_to_send = 0
    lost = 0
    while next_to_send < total or len(received) + lost < total:
        while next_to_send < total and next_to_send - len(received) - lost < window:
            client_socket.sendto(next_to_send.to_bytes(4, "big") + b"p" * 60, local.address)
            next_to_send += 1
        try:
            data = client_socket.recvfrom(2048)[0]
        except socket.timeout:
            lost = next_to_send - len(received)  # whatever is outstanding after 5 s silence is lost
            continue
        received.append(int.from_bytes(data[:4], "big"))
    print(f"10,000 UDP datagrams through the relay: received {len(received)}, lost {lost}")
    assert received == sorted(received), "datagrams of one flow came back out of order"
    assert lost == 0 and len(received) == total


def test_two_clients_get_two_routes_and_their_own_answers(
        udp_pair: Tuple[UdpLocalForwarder, RemoteForwarder], client_socket: socket.socket) -> None:
    local, _ = udp_pair
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        other.settimeout(15)
        client_socket.sendto(b"from one", local.address)
        other.sendto(b"from two", local.address)
        assert client_socket.recvfrom(100)[0] == b"from one"
        assert other.recvfrom(100)[0] == b"from two"
        assert local.routes == 2 and local.routes_total == 2
    finally:
        other.close()


def test_idle_routes_expire_on_both_sides(cs: str, udp_echo: UdpEcho, client_socket: socket.socket) -> None:
    remote = RemoteForwarder.from_connection_string(cs, udp_targets={"5000U": ("127.0.0.1", udp_echo.port)},
                                                    udp_idle_timeout=1.0).start(timeout=15)
    local = UdpLocalForwarder.from_connection_string(cs, 0, port_name="5000U", idle_timeout=1.0).start()
    try:
        client_socket.sendto(b"ping", local.address)
        assert client_socket.recvfrom(100)[0] == b"ping"
        assert wait_until(lambda: local.routes == 0, timeout=20), "the idle route was kept"
        assert wait_until(lambda: remote.active_udp_routes == 0, timeout=20)
        client_socket.sendto(b"again", local.address)  # a new route opens
        assert client_socket.recvfrom(100)[0] == b"again" and local.routes_total == 2
    finally:
        local.close(timeout=10)
        remote.close(timeout=10)


def _exchange(cs: str, preamble: bytes) -> bytes:
    client = HybridConnectionClient.from_connection_string(cs)
    try:
        conn = client.connect(timeout=15)
        try:
            conn.send(preamble)
            return bytes(conn.recv(timeout=15))  # type: ignore[arg-type]
        finally:
            conn.close(timeout=2)
    finally:
        client.close()


def test_mode_mismatches_are_answered_as_azbridge(cs: str, udp_echo: UdpEcho) -> None:
    remote = RemoteForwarder.from_connection_string(cs, targets={"22": ("127.0.0.1", 9)},
                                                    udp_targets={"5000U": ("127.0.0.1", udp_echo.port)})
    with remote.start(timeout=15):
        assert _exchange(cs, encode_preamble("22", MODE_DATAGRAM)) == b"\x00\x00\xff"  # UDP name to a TCP port
        assert _exchange(cs, encode_preamble("5000U", MODE_STREAM)) == b"\x00\x00\x01"  # TCP to a UDP port
        assert _exchange(cs, encode_preamble("5000U", MODE_DATAGRAM)) == b"\x01\x00\x01"


def test_cli_udp_suffix_forwards_datagrams(cs: str, udp_echo: UdpEcho, client_socket: socket.socket) -> None:
    import os
    import signal
    import subprocess
    import sys

    from hybridconn.commands.forward import split_udp

    assert split_udp("5000U:hc", "-L") == ("5000:hc", True)
    assert split_udp("0.0.0.0:5000u:hc/x", "-L") == ("0.0.0.0:5000:hc/x", True)
    assert split_udp("hc:host:5000U", "-R") == ("hc:host:5000", True)
    assert split_udp("hc:host:22", "-R") == ("hc:host:22", False)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = dict(os.environ, HYBRIDCONN_CONNECTION_STRING=cs, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "hybridconn", "forward", "-R", f"fwd:127.0.0.1:{udp_echo.port}U",
                                "-L", f"127.0.0.1:{port}U:fwd/{udp_echo.port}U"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert b"/udp" in lines[1], lines
        client_socket.sendto(b"through the cli", ("127.0.0.1", port))
        assert client_socket.recvfrom(100)[0] == b"through the cli"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
