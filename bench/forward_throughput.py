"""Throughput of TCP port forwarding through the relay emulator, on loopback.

    .venv/bin/python bench/forward_throughput.py [--size-mb 64] [--connections 1] [--repeat 3]

Path: TCP client -> LocalForwarder -> emulator -> RemoteForwarder -> TCP echo
server, and back. Each connection writes SIZE bytes while reading the echo;
the figure is bytes one way per second (the echo doubles the bytes on the
wire). Prints MB/s (10**6 bytes) for each run and the best.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the repository: tests.support

from tests.support.tcp_echo import EchoServer, run_concurrent  # noqa: E402

from hybridconn.emulator import RelayEmulator  # noqa: E402
from hybridconn.forward import LocalForwarder, RemoteForwarder  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=64.0, help="MB each connection sends (default 64)")
    parser.add_argument("--connections", type=int, default=1, help="concurrent connections (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    args = parser.parse_args()
    size = int(args.size_mb * 1_000_000)
    with RelayEmulator(hybrid_connections=["bench"]) as relay, EchoServer() as echo:
        cs = relay.connection_string("bench")
        remote = RemoteForwarder.from_connection_string(cs, "127.0.0.1", echo.port).start(timeout=10)
        local = LocalForwarder.from_connection_string(cs, 0).start()
        try:
            best = 0.0
            for run in range(1, args.repeat + 1):
                started = time.perf_counter()
                results = run_concurrent(local.address, args.connections, size, timeout=600)
                elapsed = time.perf_counter() - started
                failures = [r for r in results if r is not None]
                if failures:
                    print(f"run {run}: {len(failures)} connection(s) failed: {failures[0]!r}")
                    return 1
                rate = args.connections * size / elapsed / 1e6
                best = max(best, rate)
                print(
                    f"run {run}: {args.connections} x {args.size_mb:g} MB echoed in {elapsed:.2f} s = "
                    f"{rate:.1f} MB/s each way ({2 * rate:.1f} MB/s both ways)"
                )
            print(f"best: {best:.1f} MB/s each way")
        finally:
            local.close()
            remote.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
