"""An emulator in a process of its own, for the tests and benchmarks with thousands of WebSockets.

``python -m tests.support.big_emulator [STACK_KIB]`` raises RLIMIT_NOFILE to its hard limit,
sets the stack size of every thread it will start (the emulator keeps a connection thread per
side of a relayed WebSocket: the default 8 MiB of reserved stack each is what made 5,000
connections costly), relays frames from one thread (``ws_relay="poll"``, see ``main``), has no
per-client connection cap,
prints the paste-ready ``export HYBRIDCONN_CONNECTION_STRING='...'`` line for ``hc1``, and answers each ``stats`` line
on stdin with ``STATS threads=N rss=BYTES cpu=SECONDS``. EOF on stdin stops it.

A process of its own because one relayed WebSocket holds four sockets (the sender's, two in the
emulator, the listener's): 5,000 of them would not fit under a 20,000 descriptor limit in one.
"""

from __future__ import annotations

import resource
import sys
import threading
import time

from hybridconn.emulator import ClientLimits, RelayEmulator

ENV_CS = "HYBRIDCONN_CONNECTION_STRING"


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv: list) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if argv:
        threading.stack_size(int(argv[0]) * 1024)
    # One thread relays every WebSocket's frames. With a pump thread per side (ws_relay="threads"),
    # 5,000 echoes in flight made thousands of threads runnable at once, all waiting for the GIL:
    # the futex traffic took both cores (94-98 % system time) and the echo round never finished
    # (this test failed after 286 s; it passed only with a 50 ms GIL switch interval, a process-wide
    # setting no embedded emulator may change). With the poll relay it passes at the default
    # interval in about 35 s.
    # No per-client connection cap: every socket here comes from 127.0.0.1 (N senders, N listener
    # accepts and the control channel), so the default cap, half the descriptor limit, refused the
    # 5,000th accept with 503 "Too many connections from this client".
    relay = RelayEmulator(port=0, hybrid_connections=["hc1"], accept_timeout=120, response_timeout=120,
                          limits=ClientLimits(max_connections_per_client=0), ws_relay="poll")
    relay.start()
    try:
        print(f"export {ENV_CS}='{relay.connection_string('hc1')}'", flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(f"STATS threads={threading.active_count()} rss={rss_bytes()} cpu={time.process_time():.3f}",
                      flush=True)
    finally:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
