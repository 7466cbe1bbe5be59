"""``hybridconn listen``: print the HTTP requests and WebSocket messages that reach a hybrid connection.

With ``--echo`` each request is answered with its own body and each message
is sent back. Without a connection string it starts an embedded emulator and
prints the connection string a sender needs (the emulator's development key
is not a secret). Runs until Ctrl-C, or until one request or connection has
been handled with ``--once``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Optional

from ..relayed import RelayedRequest, RelayedResponse
from . import _exit
from ._common import add_connection_string, export_line
from ._relay import add_path, relay_or_emulator

NAME = "listen"
HELP = "print incoming HTTP requests and WebSocket messages (--echo answers them)"

DEFAULT_PATH = "hc1"
PREVIEW = 200  # characters of a body shown per request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_string(parser)
    add_path(parser, DEFAULT_PATH)
    parser.add_argument("--echo", action="store_true", help="answer requests with their body and echo messages")
    parser.add_argument("--status", type=int, default=200, help="HTTP status to answer with (default: 200)")
    parser.add_argument("--once", action="store_true", help="exit after one request or connection is handled")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the listener to come online")


def preview(body: bytes) -> str:
    """A one-line view of a body: the text if it is UTF-8, else its size."""
    if not body:
        return ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(body)} bytes of binary>"
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= PREVIEW else text[:PREVIEW] + f"... ({len(body)} bytes)"


class Printer:
    """Serialises output from the handler threads, one whole line at a time."""

    def __init__(self, verbose: int) -> None:
        self.verbose = verbose
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            sys.stdout.flush()


class Listening:
    """The handlers: print, optionally echo, and signal ``done`` for --once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.echo: bool = args.echo
        self.status: int = args.status
        self.once: bool = args.once
        self.out: Printer = Printer(args.verbose)
        self.done: threading.Event = threading.Event()

    def on_request(self, request: RelayedRequest) -> RelayedResponse:
        route = "rendezvous" if request.via_rendezvous else "control channel"
        size = f"{len(request.body)} bytes" if request.body else "no body"
        suffix = request.path or "/"
        query = f"?{request.query}" if request.query else ""
        self.out.line(f"HTTP {request.method} {suffix}{query} ({size}, {route}) id={request.id}")
        if self.out.verbose:
            for name, value in request.headers.items():
                self.out.line(f"  {name}: {value}")
        if request.body:
            self.out.line(f"  {preview(request.body)}")
        try:
            if self.echo:
                content_type = request.headers.get("Content-Type", "application/octet-stream")
                return RelayedResponse(status=self.status, headers={"Content-Type": content_type}, body=request.body)
            return RelayedResponse(status=self.status)
        finally:
            if self.once:
                self.done.set()

    def on_connection(self, conn: Any) -> None:
        self.out.line(f"WebSocket connected {conn.path or '/'} id={conn.id}")
        count = 0
        try:
            for message in conn:
                count += 1
                shown = preview(message) if isinstance(message, bytes) else preview(message.encode("utf-8"))
                kind = "binary" if isinstance(message, bytes) else "text"
                self.out.line(f"  {conn.id} {kind}: {shown}")
                if self.echo:
                    conn.send(message)
        finally:
            self.out.line(f"WebSocket closed id={conn.id} code={conn.close_code} after {count} message(s)")
            if self.once:
                self.done.set()


def _wait(done: threading.Event, listener: Any) -> None:
    # One-second waits keep Ctrl-C responsive and notice a listener that stopped for good (404).
    while not done.wait(1.0):
        if listener.state in ("closing", "closed"):
            return


def _stop_on_sigterm() -> None:
    """Make SIGTERM (a service manager's stop) close the listener cleanly, like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: Optional[FrameType]) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run(args: argparse.Namespace) -> int:
    import hybridconn

    _stop_on_sigterm()
    handlers = Listening(args)
    with relay_or_emulator(args, DEFAULT_PATH) as relay:
        listener = hybridconn.HybridConnectionListener.from_connection_string(
            relay.connection_string, path=relay.path, **relay.options
        )
        listener.on_request(handlers.on_request)
        listener.on_connection(handlers.on_connection)
        interrupted = False
        try:
            listener.open(timeout=args.timeout)
            print(f"hybridconn listen: online on {relay.description}", file=sys.stderr)
            if relay.embedded:
                # The emulator's key is a fixed development key, so showing it is safe and useful.
                print(f"  {export_line(relay.connection_string)}", file=sys.stderr)
            print(
                "  Ctrl-C to stop" + (" (or one request or connection with --once)" if args.once else ""),
                file=sys.stderr,
            )
            sys.stderr.flush()
            _wait(handlers.done, listener)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            listener.close(timeout=10)
        error: Optional[BaseException] = getattr(listener, "last_error", None)
    # Stopped neither by Ctrl-C nor by --once: the listener gave up (a 404, say), and that is a failure.
    if not handlers.done.is_set() and not interrupted and error is not None:
        print(f"hybridconn listen: error: {_exit.cli_message(error)}", file=sys.stderr)
        return _exit.exit_code_for(error)
    return _exit.OK
