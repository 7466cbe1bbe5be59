"""A listener that answers HTTP requests sent to a hybrid connection.

    python samples/listener_http.py            # an embedded relay emulator; prints a connection string
    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/listener_http.py

Then, from another terminal, with the connection string it printed (or yours):

    python samples/sender_http.py
    hybridconn request POST /greet -d Ada

--once exits after the first request (how the tests run it); otherwise Ctrl-C stops it.
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
    parser.add_argument("--once", action="store_true", help="exit after one request")
    args = parser.parse_args()
    handled = threading.Event()

    with relay_connection_string() as cs:
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)

        @listener.on_request  # runs in one of the listener's pool threads
        def greet(request: hybridconn.RelayedRequest) -> hybridconn.RelayedResponse:
            name = request.text or "world"
            print(f"{request.method} {request.path or '/'} ({len(request.body)} bytes)", flush=True)
            handled.set()
            return hybridconn.RelayedResponse(
                status=200, headers={"Content-Type": "text/plain; charset=utf-8"}, body=f"hello {name}"
            )

        with listener:  # opens (returns once online) and closes at the end of the block
            print("listening; Ctrl-C to stop", flush=True)
            try:
                while not (args.once and handled.is_set()):
                    handled.wait(1.0)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
