"""Open a WebSocket through a hybrid connection, send a few messages and print the replies.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/sender_websocket.py

Without HYBRIDCONN_CONNECTION_STRING it says where to get one and exits 2: start
samples/listener_websocket.py first (it prints the line to paste). A sender never starts a
listener of its own, so a reply always comes from a real listener.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import hybridconn


def echo(conn: hybridconn.HybridConnection) -> None:
    for message in conn:
        conn.send(message)


def relay_connection_string() -> Optional[str]:
    """$HYBRIDCONN_CONNECTION_STRING; without it, say where to get one (a sender never fakes its listener)."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if not given:
        print(
            "HYBRIDCONN_CONNECTION_STRING is not set: run samples/listener_websocket.py in another terminal and paste "
            "the export line it prints, or export your namespace's connection string",
            file=sys.stderr,
        )
    return given or None


def main() -> int:
    cs = relay_connection_string()
    if cs is None:
        return 2
    client = hybridconn.HybridConnectionClient.from_connection_string(cs)
    try:
        conn = client.connect("/chat", headers={"X-Sample": "sender_websocket"}, timeout=30)
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
