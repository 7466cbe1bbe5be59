"""A listener that accepts WebSocket connections and echoes every message, upper-cased if it is text.

    python samples/listener_websocket.py       # an embedded relay emulator; prints a connection string
    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/listener_websocket.py

Then: python samples/sender_websocket.py, or hybridconn connect (type lines; Ctrl-D ends).
--once exits after the first connection closes; otherwise Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from typing import Iterator

import hybridconn
from hybridconn.emulator import RelayEmulator


@contextlib.contextmanager
def relay_connection_string(name: str = "hc1") -> Iterator[str]:
    """$HYBRIDCONN_CONNECTION_STRING, or an embedded relay emulator running while the block runs."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if given:
        yield given
        return
    with RelayEmulator(hybrid_connections=[name]) as relay:
        cs = relay.connection_string(name)
        print(f"embedded relay emulator; senders use:\nexport HYBRIDCONN_CONNECTION_STRING='{cs}'", flush=True)
        yield cs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="exit after one connection")
    args = parser.parse_args()
    finished = threading.Event()

    with relay_connection_string() as cs:
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)

        @listener.on_connection  # one pool thread per connection, for as long as it is open
        def shout(conn: hybridconn.HybridConnection) -> None:
            print(f"connected: {conn.id} {conn.path or '/'}", flush=True)
            for message in conn:  # str for text messages, bytes for binary; ends when the sender closes
                conn.send(message.upper() if isinstance(message, str) else message)
            print(f"closed: {conn.id} ({conn.close_code})", flush=True)
            finished.set()

        with listener:  # opens (returns once online) and closes at the end of the block
            print("listening; Ctrl-C to stop", flush=True)
            try:
                while not (args.once and finished.is_set()):
                    finished.wait(1.0)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
