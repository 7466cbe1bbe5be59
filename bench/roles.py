"""One benchmark role per process: ``python bench/roles.py emulator|listener|plain [...]``.

Each role starts, prints one JSON line on stdout (its ports / connection strings,
or ``{"ready": true}``), then runs until its stdin closes. Separate processes
give each role its own GIL and let bench/run.py read each one's CPU time and
RSS from /proc, so emulator, listener and sender costs are told apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
from typing import Any, Dict, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import app  # noqa: E402

HYBRID_CONNECTIONS = ("py", "nodehttp", "nodews", "pymux")  # pymux: the multiplexed listener of the "many" rows


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _ready(info: Any) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


def _wait_for_eof() -> None:
    for _ in sys.stdin:
        pass


def run_emulator(args: argparse.Namespace) -> None:
    import threading

    from hybridconn.emulator import ClientLimits, RelayEmulator

    # Two threads per relayed WebSocket: 256 KiB stacks (as tests/support/big_emulator.py) let the
    # "many" rows hold 5,000 of them without reserving 80 GB of address space.
    threading.stack_size(256 * 1024)
    limits, ws_relay = None, args.ws_relay
    if args.many:
        # The "many" rows' emulator, set up as tests/support/big_emulator.py: one thread relays every
        # WebSocket's frames (with a pump thread per side, thousands of them runnable at once spent
        # the cores on GIL futex traffic and an echo round stalled) and no per-client cap (every
        # socket of the benchmark comes from 127.0.0.1). The other rows keep the defaults.
        limits, ws_relay = ClientLimits(max_connections_per_client=0), "poll"
    with RelayEmulator(host="127.0.0.1", port=0, hybrid_connections=HYBRID_CONNECTIONS, limits=limits,
                       ws_relay=ws_relay) as relay:
        _ready({"port": relay.port, "cs": {name: relay.connection_string(name) for name in HYBRID_CONNECTIONS}})
        _wait_for_eof()


def run_listener(args: argparse.Namespace) -> None:
    import hybridconn
    from hybridconn.exceptions import ConnectionClosed

    listener = hybridconn.HybridConnectionListener.from_connection_string(
        args.cs, max_workers=args.max_workers, max_pending=256)

    @listener.on_request
    def handle(req: hybridconn.RelayedRequest) -> hybridconn.RelayedResponse:
        status, ctype, body = app.http_response(req.method, req.target, req.body)
        return hybridconn.RelayedResponse(status=status, headers={"Content-Type": ctype}, body=body)

    if args.multiplexed:
        _serve_multiplexed(listener)
        listener.open(timeout=30)
        try:
            _ready({"ready": True})
            _wait_for_eof()
        finally:
            listener.close(timeout=10)
        return

    @listener.on_connection
    def serve(conn: hybridconn.HybridConnection) -> None:
        def next_message() -> Optional[Tuple[bool, Any]]:
            try:
                message = conn.recv()
            except ConnectionClosed:
                return None
            return isinstance(message, str), message

        try:
            app.serve_ws(conn.path, conn.query, next_message, conn.send)
        except ConnectionClosed:
            pass
        finally:
            conn.close(timeout=2.0)

    listener.open(timeout=30)
    try:
        _ready({"ready": True})
        _wait_for_eof()
    finally:
        listener.close(timeout=10)


def _serve_multiplexed(listener: Any) -> None:
    """bench/app.py's WebSocket routes as ``on_message`` (one reader thread for every socket)."""
    sunk: Dict[str, int] = {}

    @listener.on_message
    def on_message(conn: Any, message: Any) -> None:
        route = conn.path.rstrip("/").rsplit("/", 1)[-1]
        is_text = isinstance(message, str)
        if route == "sink":
            if is_text and message == "done":
                conn.send(str(sunk.pop(conn.id, 0)))
            elif not is_text:
                sunk[conn.id] = sunk.get(conn.id, 0) + len(message)
        elif route == "source" and is_text and message.startswith("go "):
            _, total, size = message.split()
            chunk = app.blob(int(size))
            for _ in range(int(total) // int(size)):
                conn.send(chunk)
            conn.send("done")
        else:
            conn.send(message)

    @listener.on_close
    def on_close(conn: Any) -> None:
        sunk.pop(conn.id, None)


def run_plain(args: argparse.Namespace) -> None:
    from servers import PlainHTTPServer, PlainWSServer

    http = PlainHTTPServer().start()
    ws = PlainWSServer().start()
    try:
        _ready({"http_port": http.port, "ws_port": ws.port})
        _wait_for_eof()
    finally:
        http.close()
        ws.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    emulator = sub.add_parser("emulator")
    emulator.add_argument("--many", action="store_true", help="the emulator of the many-WebSocket rows")
    emulator.add_argument("--ws-relay", choices=("threads", "poll"), default="threads",
                          help="RelayEmulator(ws_relay=...) (the many rows always use poll)")
    listener = sub.add_parser("listener")
    listener.add_argument("--cs", required=True)
    listener.add_argument("--max-workers", type=int, default=16)
    listener.add_argument("--multiplexed", action="store_true", help="serve WebSockets with on_message")
    sub.add_parser("plain")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    _raise_fd_limit()
    {"emulator": run_emulator, "listener": run_listener, "plain": run_plain}[args.role](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
