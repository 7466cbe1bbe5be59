"""``hybridconn connect``: an interactive WebSocket through the relay, like websocat.

Each line read from stdin is sent as one text message (``--binary``: binary);
each message received is written to stdout, one per line. At the end of stdin
the replies still coming are printed until none has arrived for ``--linger``
seconds (or the listener closes), then the connection is closed with 1000;
the exit code is 0 for a clean close. So ``echo hi | hybridconn connect``
prints the listener's answer. A listener that closes first with anything but
1000 (1001 when it shuts down, 1006 when the connection is lost) ends the
command with one line on stderr and exit code 56 (``_exit.CLOSED``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, Dict, List, Optional

from ..exceptions import ConfigurationError, ConnectionClosed, HybridConnectionError
from . import _exit
from ._common import add_connection_string
from ._relay import add_path, required_relay

NAME = "connect"
HELP = "open a WebSocket through the relay: stdin lines -> messages, messages -> stdout"

CLOSE_WAIT = 5.0  # seconds close() may take
DEFAULT_LINGER = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_string(parser)
    add_path(parser)
    parser.add_argument("--suffix", default="", help="path after the hybrid connection name, e.g. /chat")
    parser.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="connect header (repeatable)"
    )
    parser.add_argument("--binary", action="store_true", help="send each line as a binary message")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the connection (default: 30)")
    parser.add_argument(
        "--linger",
        type=float,
        default=DEFAULT_LINGER,
        help=f"after the end of stdin, wait for replies until none comes for this long (default: {DEFAULT_LINGER:g} s)",
    )


def parse_headers(values: List[str]) -> Dict[str, str]:
    """``['Name: value', ...]`` as a dict; a malformed one is a ConfigurationError."""
    headers: Dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError(f"header {value!r:.60} is not 'Name: value'")
        headers[name.strip()] = text.strip()
    return headers


def _write(message: Any) -> None:
    if isinstance(message, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(message + b"\n")
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


class Session:
    """Two threads: one prints what arrives, one sends what stdin gives."""

    def __init__(self, conn: Any, binary: bool, linger: float) -> None:
        self.conn = conn
        self.binary = binary
        self.linger = linger
        self.received: threading.Event = threading.Event()  # set when the receiving side has ended
        self.activity: threading.Event = threading.Event()  # set on every message received
        self.stdin_ended: threading.Event = threading.Event()
        self.wake: threading.Event = threading.Event()  # set when either side ends
        self.error: Optional[BaseException] = None
        #: The listener closed the connection while stdin was still open.
        self.closed_first = False

    def receive(self) -> None:
        try:
            for message in self.conn:
                _write(message)
                self.activity.set()
            self.closed_first = not self.stdin_ended.is_set()
        except HybridConnectionError as exc:
            if not self.stdin_ended.is_set():
                self.error = exc
        finally:
            self.received.set()
            self.activity.set()
            self.wake.set()

    def send(self) -> None:
        try:
            for line in sys.stdin:
                text = line.rstrip("\r\n")
                self.conn.send(text.encode("utf-8") if self.binary else text)
        except ConnectionClosed:
            pass  # the listener closed first; the receiver reports it
        finally:
            self.stdin_ended.set()
            self.wake.set()

    def run(self) -> None:
        receiver = threading.Thread(target=self.receive, name="hybridconn-connect-receive", daemon=True)
        # stdin cannot be interrupted, so its reader is a daemon the process may leave behind at exit.
        sender = threading.Thread(target=self.send, name="hybridconn-connect-stdin", daemon=True)
        receiver.start()
        sender.start()
        try:
            while not self.received.is_set():
                if self.stdin_ended.is_set():
                    self._linger()
                    break
                self.wake.wait(1.0)  # bounded, so Ctrl-C is noticed
        finally:
            self.conn.close(timeout=CLOSE_WAIT)
            receiver.join(CLOSE_WAIT)

    def _linger(self) -> None:
        # Replies to the last lines may still be on their way: print them until the line goes quiet.
        while not self.received.is_set():
            self.activity.clear()
            if not self.activity.wait(self.linger):
                return


def run(args: argparse.Namespace) -> int:
    import hybridconn

    relay = required_relay(args)
    headers = parse_headers(args.header)
    client = hybridconn.HybridConnectionClient.from_connection_string(
        relay.connection_string, path=relay.path, **relay.options
    )
    with client:
        conn = client.connect(args.suffix, headers or None, timeout=args.timeout)
    if args.verbose:
        print(f"hybridconn connect: connected to {relay.description} id={conn.id}", file=sys.stderr)
    session = Session(conn, args.binary, args.linger)
    try:
        session.run()
    except KeyboardInterrupt:
        conn.close(1001, "interrupted", timeout=2.0)
        return _exit.INTERRUPTED
    return _outcome(session, conn.close_code, conn.close_reason, args.verbose)


def _outcome(session: Session, code: Optional[int], reason: str, verbose: int) -> int:
    """The exit code, and a line on stderr unless the connection ended as the user ended it."""
    if session.error is not None:
        print(f"hybridconn connect: error: {_exit.cli_message(session.error)}", file=sys.stderr)
        return _exit.exit_code_for(session.error)
    if code not in (None, 1000, 1005) and (session.closed_first or code != 1001):
        # 1001 after the end of stdin is the listener's answer to our own close; before it, it went away.
        print(
            f"hybridconn connect: error: the listener closed the connection: {code} {reason}".rstrip(), file=sys.stderr
        )
        return _exit.CLOSED
    if verbose:
        print(f"hybridconn connect: closed ({code})", file=sys.stderr)
    return _exit.OK
