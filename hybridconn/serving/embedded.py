"""The relay emulator ``hybridconn serve`` starts when it is given no connection string.

It listens on :data:`DEFAULT_PORT` (9350, as ``hybridconn emulator`` does), so
the connection string it prints is the same from one run to the next; when
that port is taken it takes any free port and says so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from typing import Iterator, Optional, Tuple

__all__ = ["embedded_emulator", "DEFAULT_PORT"]

log: logging.Logger = logging.getLogger(__name__)

DEFAULT_PORT = 9350


@contextlib.contextmanager
def embedded_emulator(path: str, port: int = DEFAULT_PORT) -> Iterator[Tuple[str, Optional[str]]]:
    """A running emulator with hybrid connection ``path``: ``(connection string, note)``.

    ``note`` says why the port is not ``port`` (it was taken), or is None.
    """
    from ..emulator import RelayEmulator

    note = None
    emulator = RelayEmulator(port=port, hybrid_connections=[path])
    try:
        emulator.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        emulator = RelayEmulator(port=0, hybrid_connections=[path])
        emulator.start()
        note = f"port {port} is in use; the embedded relay emulator listens on port {emulator.port} instead"
    try:
        yield emulator.connection_string(path), note
    finally:
        emulator.stop(drain=2.0)  # deliver responses already given before the relay goes away
