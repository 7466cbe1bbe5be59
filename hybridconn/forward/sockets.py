"""TCP or Unix domain sockets for the forwarders: azbridge takes a non-numeric "port" as a socket path.

A bind address or target host that starts with ``/`` (or ``unix:``) is a Unix
domain socket path; the port is then ignored. azbridge's default port name for
a socket is its path.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any, Optional

__all__ = ["socket_path", "listen", "connect", "tune", "remove_socket_file"]


def socket_path(address: Optional[str]) -> Optional[str]:
    """The Unix socket path ``address`` names, or None for a host name or IP address."""
    if not address:
        return None
    if address.startswith("unix:"):
        return address[len("unix:"):]
    return address if address.startswith("/") else None


def listen(bind_address: str, port: int, backlog: int) -> socket.socket:
    """A listening socket: Unix at a path (a stale socket file there is replaced), else TCP."""
    path = socket_path(bind_address)
    if path is not None:
        if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows before AF_UNIX
            raise OSError("Unix domain sockets are not available on this system")
        remove_socket_file(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = path
    else:
        server = socket.socket(socket.AF_INET6 if ":" in bind_address else socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        target = (bind_address, port)
    try:
        server.bind(target)
        server.listen(backlog)
    except OSError:
        server.close()
        raise
    return server


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """Connect a forwarder's target: a Unix socket path, or ``host:port`` over TCP."""
    path = socket_path(host)
    if path is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def tune(sock: socket.socket) -> None:
    """No Nagle delay on TCP (as azbridge sets it); nothing to do on a Unix socket."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def remove_socket_file(path: str) -> None:
    """Delete ``path`` if it is a socket (never another kind of file)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
