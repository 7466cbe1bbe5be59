"""An emulator in a child process with a small file-descriptor limit, for exhaustion tests.

``python -m tests.support.limited_emulator NOFILE CAP``: lowers ``RLIMIT_NOFILE`` to ``NOFILE``,
starts a :class:`~hybridconn.emulator.RelayEmulator` whose per-client connection cap is ``CAP``
(0: none, -1: the default), prints ``export HYBRIDCONN_CONNECTION_STRING='...'``, then answers
each ``status`` line on stdin with ``STATUS running=<bool> refused=<n>`` until stdin closes.
"""

from __future__ import annotations

import logging
import resource
import sys

from hybridconn.emulator import ClientLimits, RelayEmulator


def main() -> None:
    nofile, cap = int(sys.argv[1]), int(sys.argv[2])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    limits = ClientLimits() if cap < 0 else ClientLimits(max_connections_per_client=cap)  # -1: the default
    with RelayEmulator(hybrid_connections=["hc1"], limits=limits) as relay:
        print(f"export HYBRIDCONN_CONNECTION_STRING='{relay.connection_string('hc1')}'", flush=True)
        for line in sys.stdin:
            if line.strip() == "status":
                print(f"STATUS running={relay.running} refused={relay.refused_connections}", flush=True)


if __name__ == "__main__":
    main()
