"""Send HTTP requests through a hybrid connection to whatever listener is online.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/sender_http.py [NAME]

Without HYBRIDCONN_CONNECTION_STRING it says where to get one and exits 2: start
samples/listener_http.py first (it prints the line to paste). A sender never starts a
listener of its own, so a success always means a real listener answered.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import hybridconn


def relay_connection_string() -> Optional[str]:
    """$HYBRIDCONN_CONNECTION_STRING; without it, say where to get one (a sender never fakes its listener)."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if not given:
        print(
            "HYBRIDCONN_CONNECTION_STRING is not set: run samples/listener_http.py in another terminal and paste "
            "the export line it prints, or export your namespace's connection string",
            file=sys.stderr,
        )
    return given or None


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "Ada"
    cs = relay_connection_string()
    if cs is None:
        return 2
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
