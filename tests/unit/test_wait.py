"""wait_readable works for descriptors past select()'s FD_SETSIZE (1024)."""

from __future__ import annotations

import fcntl
import resource
import socket

import pytest

from hybridconn._wait import wait_readable

HIGH_FD = 1500


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= HIGH_FD, reason="RLIMIT_NOFILE too low for fd 1500"
)
def test_wait_readable_on_a_descriptor_above_1024() -> None:
    a, b = socket.socketpair()
    high = socket.socket(fileno=fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, HIGH_FD))
    try:
        assert high.fileno() >= HIGH_FD
        assert wait_readable(high, 0.01) is False
        b.sendall(b"x")
        assert wait_readable(high, 5.0) is True
        assert high.recv(1) == b"x"
    finally:
        for sock in (high, a, b):
            sock.close()


def test_wait_readable_sees_eof_and_refuses_a_closed_socket() -> None:
    a, b = socket.socketpair()
    try:
        b.close()
        assert wait_readable(a, 5.0) is True  # EOF is readable
        assert a.recv(1) == b""
    finally:
        a.close()
    with pytest.raises((OSError, ValueError)):
        wait_readable(a, 0.01)
