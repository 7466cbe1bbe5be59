"""``hybridconn request METHOD SUFFIX``: send one HTTP request through the relay, like curl.

The response body goes to stdout as it came; the status line and headers go
to stderr with ``-v``. As with ``curl --fail``, a status of 400 or more exits
with code 22 only when ``--fail`` is given.

The body options are curl's: ``-d``/``--data`` is form data
(``application/x-www-form-urlencoded``; repeated ones are joined with ``&``, and
line breaks in an ``@FILE`` are dropped), ``--data-binary`` is sent byte for byte
(``application/octet-stream``), and ``--json`` is JSON (``application/json``, and
``Accept: application/json``). A ``-H 'Content-Type: ...'`` of yours wins.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Optional, Tuple

from ..exceptions import ConfigurationError
from ._common import add_connection_string
from ._exit import HTTP_ERROR
from ._relay import add_path, required_relay
from .connect import parse_headers

NAME = "request"
HELP = "send an HTTP request through the relay and print the response body (curl-like)"

FAIL_EXIT = HTTP_ERROR  # 22, curl's exit code for --fail


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", metavar="METHOD", help="GET, POST, PUT, DELETE, ...")
    parser.add_argument(
        "suffix", metavar="SUFFIX", nargs="?", default="", help="path (and query) after the hybrid connection name"
    )
    add_connection_string(parser)
    add_path(parser)
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "-d", "--data", action="append", default=None, metavar="DATA",
        help="form data (application/x-www-form-urlencoded, repeats joined with &); @FILE reads a file, @- stdin",
    )  # fmt: skip
    body.add_argument(
        "--data-binary", default=None, metavar="DATA", help="a raw body (application/octet-stream); @FILE, @- as for -d"
    )
    body.add_argument(
        "--json", default=None, metavar="DATA", help="a JSON body (application/json); @FILE, @- as for -d"
    )
    parser.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header (repeatable)"
    )
    parser.add_argument("--fail", "-f", action="store_true", help=f"exit with {FAIL_EXIT} on an HTTP status >= 400")
    parser.add_argument("--timeout", type=float, default=70.0, help="seconds to wait for the response (default: 70)")


def read_data(data: Optional[str]) -> Optional[bytes]:
    """The body -d asked for: literal text, ``@file`` or ``@-`` (stdin)."""
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            with open(data[1:], "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {data[1:]!r}: {exc.strerror}") from exc
    return data.encode("utf-8")


def body_and_headers(args: argparse.Namespace, headers: Dict[str, str]) -> Tuple[Optional[bytes], Dict[str, str]]:
    """The body and the headers with curl's Content-Type (and Accept, for --json) unless the user set them."""
    given = {name.lower() for name in headers}
    defaults: Dict[str, str] = {}
    if args.data is not None:
        # curl -d drops CR and LF from a file's content, then joins the pieces with "&".
        parts = [
            (read_data(item) or b"").replace(b"\r", b"").replace(b"\n", b"")
            if item.startswith("@")
            else item.encode("utf-8")
            for item in args.data
        ]
        body: Optional[bytes] = b"&".join(parts)
        defaults["Content-Type"] = "application/x-www-form-urlencoded"
    elif args.data_binary is not None:
        body = read_data(args.data_binary)
        defaults["Content-Type"] = "application/octet-stream"
    elif args.json is not None:
        body = read_data(args.json)
        defaults.update({"Content-Type": "application/json", "Accept": "application/json"})
    else:
        return None, headers
    merged = {name: value for name, value in defaults.items() if name.lower() not in given}
    merged.update(headers)
    return body, merged


def run(args: argparse.Namespace) -> int:
    import hybridconn

    relay = required_relay(args)
    body, headers = body_and_headers(args, parse_headers(args.header))
    client = hybridconn.HybridConnectionClient.from_connection_string(
        relay.connection_string, path=relay.path, **relay.options
    )
    suffix = args.suffix if not args.suffix or args.suffix.startswith("/") else "/" + args.suffix
    with client:
        response = client.request(args.method.upper(), suffix, data=body, headers=headers or None, timeout=args.timeout)
        _print(response, args.verbose)
    if args.fail and response.status_code >= 400:
        print(f"hybridconn request: HTTP {response.status_code} {response.reason or ''}".rstrip(), file=sys.stderr)
        return FAIL_EXIT
    return 0


def _print(response: Any, verbose: int) -> None:
    try:
        if verbose:
            print(f"HTTP {response.status_code} {response.reason or ''}".rstrip(), file=sys.stderr)
            for name, value in response.headers.items():
                print(f"{name}: {value}", file=sys.stderr)
            sys.stderr.flush()
        sys.stdout.flush()
        sys.stdout.buffer.write(response.content)
        sys.stdout.buffer.flush()
    finally:
        response.close()
