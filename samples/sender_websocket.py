"""Open a WebSocket through a hybrid connection, send a few messages and print the replies.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/sender_websocket.py

Without HYBRIDCONN_CONNECTION_STRING it starts an embedded relay emulator and a
stand-in echo listener, so it runs on its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import hybridconn
from hybridconn.emulator import RelayEmulator


def echo(conn: hybridconn.HybridConnection) -> None:
    for message in conn:
        conn.send(message)


@contextlib.contextmanager
def relay_connection_string(name: str = "hc1") -> Iterator[str]:
    """$HYBRIDCONN_CONNECTION_STRING, or an embedded emulator with a stand-in echo listener."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if given:
        yield given
        return
    with RelayEmulator(hybrid_connections=[name]) as relay:
        cs = relay.connection_string(name)
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)
        listener.on_connection(echo)
        listener.open(timeout=30)
        try:
            yield cs
        finally:
            listener.close()


def main() -> int:
    with relay_connection_string() as cs:
        client = hybridconn.HybridConnectionClient.from_connection_string(cs)
        try:
            conn = client.connect(headers={"X-Sample": "sender_websocket"}, suffix="/chat", timeout=30)
        except (hybridconn.EndpointNotFoundError, hybridconn.ListenerUnavailableError):
            print("no listener is online: start samples/listener_websocket.py first", file=sys.stderr)
            return 1
        with conn:  # closes with 1000 at the end of the block
            for text in ("hello", "relay", "bye"):
                conn.send(text)
                print(f"sent {text!r}, got {conn.recv(timeout=30)!r}")
            conn.send(b"\x00\x01binary")
            print(f"binary round trip: {conn.recv(timeout=30)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
