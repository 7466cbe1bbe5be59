"""Send HTTP requests through a hybrid connection to whatever listener is online.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/sender_http.py [NAME]

Without HYBRIDCONN_CONNECTION_STRING it starts an embedded relay emulator and a
stand-in listener, so it runs on its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import hybridconn
from hybridconn.emulator import RelayEmulator


@contextlib.contextmanager
def relay_connection_string(name: str = "hc1") -> Iterator[str]:
    """$HYBRIDCONN_CONNECTION_STRING, or an embedded emulator with a stand-in listener."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if given:
        yield given
        return
    with RelayEmulator(hybrid_connections=[name]) as relay:
        cs = relay.connection_string(name)
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)
        listener.on_request(lambda req: hybridconn.RelayedResponse(body=b"hello " + (req.body or b"world")))
        listener.open(timeout=30)
        try:
            yield cs
        finally:
            listener.close()


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "Ada"
    with relay_connection_string() as cs:
        with hybridconn.HybridConnectionClient.from_connection_string(cs) as client:
            try:
                response = client.request("POST", "/greet", data=name.encode("utf-8"), timeout=30)
            except hybridconn.ListenerUnavailableError:
                print("no listener is online: start samples/listener_http.py first", file=sys.stderr)
                return 1
            print(f"{response.status_code} {response.text}")
            return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
