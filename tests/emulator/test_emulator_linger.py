"""An answer that closes the connection before the request was all read ends it in stages.

Closing a socket with unread bytes makes the kernel answer them with a TCP reset, and a reset may
discard the emulator's answer before the client reads it (RFC 7230 section 6.6). So after an early
413 the emulator shuts only its writing side - the client reads the answer, then a clean end -
and drops what the client still sends, for a bounded time.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Dict, Tuple

import pytest

from hybridconn.emulator import ClientLimits, RelayEmulator
from hybridconn.emulator import http_conn

DECLARED = 10_000_000
FIRST = 100_000  # past the 64 kB the emulator reads of a refused body before it closes instead


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    """A 1,000-byte body limit: the 10 MB uploads below are refused 413 at their head."""
    return {"hybrid_connections": ["hc1"], "limits": ClientLimits(max_request_body=1000)}


def _address(relay: RelayEmulator) -> Tuple[str, int]:
    host, port = relay.namespace.split("://", 1)[1].strip("/").rsplit(":", 1)
    return host, int(port)


def _upload_refused(relay: RelayEmulator) -> Tuple[socket.socket, bytes]:
    """A POST declaring 10 MB (over the 1,000-byte limit) and its first 100 kB; returns the socket
    and the whole answer (head and body), read while the upload is still unfinished."""
    sock = socket.create_connection(_address(relay), timeout=30)
    head = f"POST /hc1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {DECLARED}\r\n\r\n".encode()
    sock.sendall(head + b"x" * FIRST)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, f"the connection ended before the answer: {answer!r}"
        answer += chunk
    head_part, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection ended inside the answer's body"
        body += chunk
    return sock, head_part + b"\r\n\r\n" + body


def test_an_early_413_is_followed_by_a_clean_end_and_the_rest_of_the_body_is_dropped(
    relay: RelayEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generous bounds: on a loaded machine the steps below must not outlast the linger.
    monkeypatch.setattr(http_conn, "LINGER_TIME", 60.0)
    monkeypatch.setattr(http_conn, "LINGER_IDLE", 30.0)
    sock, answer = _upload_refused(relay)
    try:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        assert b"connection: close" in answer.lower()
        time.sleep(0.3)  # a socket closed at once would be closed by now: the next bytes get a reset
        for _ in range(5):  # the upload goes on: read and dropped (a reset would fail the 2nd send)
            sock.sendall(b"y" * 60_000)
            time.sleep(0.05)
        assert sock.recv(65536) == b""  # after the answer: the end of the stream, not a reset
    finally:
        sock.close()


def test_the_linger_is_bounded_for_a_client_that_never_stops_sending(
    relay: RelayEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_conn, "LINGER_TIME", 0.5)
    sock, answer = _upload_refused(relay)
    started = time.monotonic()
    try:
        assert answer.startswith(b"HTTP/1.1 413 ")
        with pytest.raises(OSError):  # BrokenPipeError or ConnectionResetError once it closes
            while time.monotonic() - started < 60:
                sock.sendall(b"z" * 65536)
        assert time.monotonic() - started < 30  # well past 0.5 s only on a machine under heavy load
    finally:
        sock.close()
