"""systemd's readiness protocol (``Type=notify`` units): READY, RELOADING, STOPPING and STATUS.

When systemd starts ``hybridconn serve`` with ``NOTIFY_SOCKET`` set, the
arbiter says ``READY=1`` once the first listener is online (so ``systemctl
start`` returns when the service really serves), ``RELOADING=1`` on SIGHUP,
``STOPPING=1`` when it drains, and a ``STATUS=`` line with the workers online.
Without ``NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional

__all__ = ["Notifier"]

log: logging.Logger = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams to ``$NOTIFY_SOCKET`` (an abstract socket when it starts with ``@``)."""

    def __init__(self, address: Optional[str] = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: Optional[str] = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode("utf-8"), self._address)
        except OSError as exc:  # systemd went away: serving goes on
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        self.send("RELOADING=1", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=draining")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")
