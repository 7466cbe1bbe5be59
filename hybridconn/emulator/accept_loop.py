"""The emulator's accept loop: it never goes down for good while the emulator runs.

A failed ``accept()`` for want of resources (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``)
or a connection thread that cannot start is waited out with a growing pause (10 ms up to 1 s,
as gunicorn's workers do) and serving goes on: the connections already open keep working and
new ones are accepted again as soon as descriptors or threads are free. A connection the loop
cannot serve (over its client's cap, or no thread for it) is closed, never left open unserved.
Only a listening socket that is itself broken ends the loop, and then ``RelayEmulator.running``
says False.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Callable, Optional, Tuple

from .limits import ClientCounter, refuse_busy

__all__ = ["AcceptLoop", "RESOURCE_ERRORS"]

log: logging.Logger = logging.getLogger(__name__)

#: accept() failures that mean "out of something, try again later".
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() failures of one connection that died while queued: take the next one.
_PEER_ERRORS = frozenset({errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM, errno.EAGAIN})

_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 1.0
#: A resource shortage is logged at most this often (it repeats for as long as it lasts).
_LOG_EVERY = 5.0

#: Starts serving one accepted socket (raises RuntimeError when no thread can be started).
Serve = Callable[[socket.socket, Tuple[str, int], int], None]


class AcceptLoop:
    """Accepts connections on ``server`` until ``stopped()``; see the module's documentation."""

    def __init__(self, server: socket.socket, serve: Serve, clients: ClientCounter,
                 stopped: Callable[[], bool], wait: Callable[[float], bool]) -> None:
        self._server = server
        self._serve = serve
        self._clients = clients
        self._stopped = stopped
        self._wait = wait  # sleeps up to the given seconds; True once the emulator stops
        self._pause = _FIRST_PAUSE
        self._last_logged = 0.0
        self.shortages = 0  # accept() or thread-start failures waited out
        self.broken: Optional[BaseException] = None  # set when the listening socket itself failed

    def run(self) -> None:
        number = 0
        while not self._stopped():
            try:
                sock, peer = self._server.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stopped():
                    return
                if exc.errno in RESOURCE_ERRORS:
                    self._short_of(f"accept() failed: {errno.errorcode.get(exc.errno or 0, exc)}")
                    continue
                if exc.errno in _PEER_ERRORS:
                    continue
                self.broken = exc
                log.error("relay emulator: the listening socket failed (%s); no new connections", exc)
                return
            if self._stopped():
                sock.close()
                return
            number += 1
            if self._start(sock, peer[:2], number):
                self._pause = _FIRST_PAUSE

    def _start(self, sock: socket.socket, peer: Tuple[str, int], number: int) -> bool:
        address = peer[0]
        if not self._clients.acquire(address):
            log.warning("relay emulator: refusing a connection from %s: %d open from it already (the cap)",
                        address, self._clients.cap)
            refuse_busy(sock)
            return True
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
            self._serve(sock, peer, number)
            return True
        except (RuntimeError, MemoryError, OSError) as exc:  # "can't start new thread", a socket gone already
            self._clients.release(address)
            try:
                sock.close()
            except OSError:
                pass
            self._short_of(f"could not serve a connection from {address}: {exc}")
            return False

    def _short_of(self, what: str) -> None:
        self.shortages += 1
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY:
            self._last_logged = now
            log.warning("relay emulator: %s; pausing %.0f ms and serving on", what, self._pause * 1000)
        self._wait(self._pause)
        self._pause = min(self._pause * 2, _LONGEST_PAUSE)
