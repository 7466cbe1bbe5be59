"""Socket odds and ends the test servers share: a free port, an HTTP head, shutting a socket down."""

from __future__ import annotations

import socket
import struct
from typing import Optional, Tuple

from wsproto.utilities import generate_accept_token

READ_SIZE = 64 * 1024


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_http_head(sock: socket.socket) -> Optional[Tuple[str, bytes]]:
    """Read up to the end of an HTTP head: (request line, everything read so far); None on EOF first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            return None
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1"), data


def shut(sock: socket.socket) -> None:
    """Shut both directions (waking a thread blocked on it); the socket stays open until closed."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # not connected, or already gone
        pass


def shut_write(sock: socket.socket) -> None:
    """Pass an end of stream on: no more bytes this way; the other way still flows."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def shut_with_reset(sock: socket.socket) -> None:
    """As :func:`shut`, and make the final close a reset (SO_LINGER 0): a pulled cable, a dying NAT."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    shut(sock)


def close_quietly(sock: socket.socket) -> None:
    shut(sock)
    sock.close()


def websocket_accept(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value answering a handshake's ``Sec-WebSocket-Key``."""
    return generate_accept_token(key.encode("ascii")).decode("ascii")
