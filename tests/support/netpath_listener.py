"""A listener for tests/netpath, run inside a network namespace: prints ``online`` and
``offline <error type>: <error>`` lines as its control channel comes and goes.

Usage: ``python -m tests.support.netpath_listener KEEPALIVE PING_INTERVAL PING_TIMEOUT``
with ``HYBRIDCONN_CONNECTION_STRING`` set; ends when stdin closes.
"""

from __future__ import annotations

import os
import sys

from hybridconn import HybridConnectionListener, RelayedResponse


def main() -> None:
    keepalive, interval, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    listener = HybridConnectionListener.from_connection_string(
        os.environ["HYBRIDCONN_CONNECTION_STRING"], keepalive=keepalive, ping_interval=interval,
        ping_timeout=timeout, backoff=(0, 1), jitter=0)
    listener.on_request = lambda request: RelayedResponse(body=b"ok")
    listener.on_online = lambda: print("online", flush=True)
    listener.on_offline = lambda error: print(f"offline {type(error).__name__}: {error}", flush=True)
    with listener:
        listener.open(timeout=30)
        sys.stdin.read()  # until the test closes our stdin


if __name__ == "__main__":
    main()
