"""An emulator in a process of its own, for the tests and benchmarks with thousands of WebSockets.

``python -m tests.support.big_emulator [STACK_KIB]`` raises RLIMIT_NOFILE to its hard limit,
sets the stack size of every thread it will start (the emulator runs two threads per relayed
WebSocket: the default 8 MiB of reserved stack each is what made 5,000 connections costly),
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

from hybridconn.emulator import RelayEmulator

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
    relay = RelayEmulator(port=0, hybrid_connections=["hc1"], accept_timeout=120, response_timeout=120)
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
