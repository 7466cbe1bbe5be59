"""A TCP echo server and clients that check every byte, for the forwarding tests (and bench/forward_throughput.py)."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
from typing import List, Optional, Tuple

from tests.support.sockets import shut

CHUNK = 64 * 1024


class EchoServer:
    """A TCP echo server on 127.0.0.1: a thread per connection echoes until EOF, then closes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._lock = threading.Lock()
        self._conns: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="test-echo-accept", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping.is_set():
                    conn.close()
                    return
                self.accepted += 1
                self._conns.append(conn)
                thread = threading.Thread(target=self._echo, args=(conn,), name="test-echo", daemon=True)
                self._threads.append(thread)
            thread.start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            shut(conn)

    def close(self) -> None:
        self._stopping.set()
        shut(self.sock)
        self.sock.close()
        self._thread.join(5)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            shut(conn)
        for thread in threads:
            thread.join(5)
        for conn in conns:
            conn.close()

    def __enter__(self) -> "EchoServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def echo_roundtrip(address: Tuple[str, int], size: int, seed: int, timeout: float = 60.0) -> Tuple[str, str, int]:
    """Send ``size`` pseudo-random bytes through ``address`` while reading the echo.

    Returns (sha256 sent, sha256 received, bytes received). The writer runs in
    its own thread so neither side can deadlock on full buffers.
    """
    sock = socket.create_connection(address, timeout=timeout)
    sent_hash = hashlib.sha256()
    errors: List[BaseException] = []

    def write() -> None:
        rng = random.Random(seed)
        remaining = size
        try:
            while remaining:
                block = rng.getrandbits(8 * min(CHUNK, remaining)).to_bytes(min(CHUNK, remaining), "little")
                sent_hash.update(block)
                sock.sendall(block)
                remaining -= len(block)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            errors.append(exc)

    writer = threading.Thread(target=write, name=f"test-writer-{seed}", daemon=True)
    writer.start()
    received_hash = hashlib.sha256()
    received = 0
    try:
        while received < size:
            data = sock.recv(CHUNK)
            if not data:
                break
            received_hash.update(data)
            received += len(data)
    finally:
        writer.join(timeout)
        sock.close()
    if errors:
        raise errors[0]
    return sent_hash.hexdigest(), received_hash.hexdigest(), received


def run_concurrent(
    address: Tuple[str, int], connections: int, size: int, timeout: float = 120.0
) -> List[Optional[BaseException]]:
    """``connections`` echo round trips at once; per connection None (byte-exact) or the failure."""
    results: List[Optional[BaseException]] = [None] * connections

    def one(index: int) -> None:
        try:
            sent, received, count = echo_roundtrip(address, size, seed=index, timeout=timeout)
            if count != size or sent != received:
                results[index] = AssertionError(
                    f"connection {index}: {count} of {size} bytes, hashes equal: {sent == received}"
                )
        except BaseException as exc:  # noqa: BLE001
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,), name=f"test-conn-{i}", daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        if thread.is_alive():
            results[threads.index(thread)] = TimeoutError("connection still running")
    return results
