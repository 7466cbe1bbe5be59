"""``hybridconn serve MODULE:APP``: serve a WSGI application (Django, Flask, ...) through a relay.

``MODULE:APP`` names the application the way gunicorn does:
``myproject.wsgi:application`` for Django, ``app:app`` for Flask (``:APP``
defaults to ``application``). The current directory is importable, as it is
for ``python -m``.

Without a connection string it starts an embedded relay emulator and prints
the URL to call, a ready-to-paste curl command with a token and the
connection string (the emulator's key is a fixed development key, not a
secret). Serves until Ctrl-C or SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Optional

from ..addresses import http_url, token_audience
from ..auth import ConnectionString, generate_sas_token
from ..exceptions import ConfigurationError
from ._common import ENV_CONNECTION_STRING, add_connection_string
from ._relay import Relay, add_path, relay_or_emulator

NAME = "serve"
HELP = "serve a WSGI application (MODULE:APP, e.g. mysite.wsgi:application) through a hybrid connection"

DEFAULT_PATH = "hc1"
DEFAULT_MAX_WORKERS = 16
#: The curl command's token is for trying the app out on the emulator; a day is plenty.
EMULATOR_TOKEN_TTL = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", metavar="MODULE:APP", help="the WSGI application, e.g. mysite.wsgi:application or app:app")
    add_connection_string(parser)
    add_path(parser, DEFAULT_PATH)
    parser.add_argument(
        "--max-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help=f"requests handled at once, each in its own thread (default: {DEFAULT_MAX_WORKERS})",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the listener to come online")


def load_app(spec: str) -> Callable[..., Any]:
    """Import ``module[:attr[.attr]]`` with the current directory importable."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
        raise ConfigurationError(f"{spec!r} is not MODULE:APP (e.g. mysite.wsgi:application)")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for attr in (attr_path or "application").split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as exc:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr_path or 'application'!r}") from exc
    if not callable(target):
        raise ConfigurationError(f"{spec!r} is not a WSGI application (it is not callable)")
    return target  # type: ignore[no-any-return]


def _announce(spec: str, relay: Relay) -> None:
    connection = ConnectionString.parse(relay.connection_string)
    url = http_url(connection.namespace, relay.path, "/")
    out = sys.stdout
    out.write(f"hybridconn serve: {spec} online on {relay.description}\n")
    out.write(f"  URL: {url}\n")
    if relay.embedded and connection.shared_access_key_name and connection.shared_access_key:
        token = generate_sas_token(
            token_audience(connection.namespace, relay.path),
            connection.shared_access_key_name,
            connection.shared_access_key,
            ttl=EMULATOR_TOKEN_TTL,
        )
        out.write(f"  Try it: curl -H {shlex.quote('ServiceBusAuthorization: ' + token)} {url}\n")
        out.write(f"  Connection string: {ENV_CONNECTION_STRING}={shlex.quote(relay.connection_string)}\n")
    else:
        # A real namespace's token is a credential: show how to make one, not one.
        out.write(f'  Try it: curl -H "ServiceBusAuthorization: $(hybridconn token {relay.path})" {url}\n')
    out.write("  Ctrl-C to stop\n")
    out.flush()


def _stop_on_sigterm(stop: threading.Event) -> Optional[Any]:
    """Let SIGTERM (a service manager, ``docker stop``) end serving as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    return signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    import hybridconn

    if args.max_workers < 1:
        raise ConfigurationError("--max-workers must be at least 1")
    app = load_app(args.app)
    stop = threading.Event()
    previous = _stop_on_sigterm(stop)
    try:
        with relay_or_emulator(args, DEFAULT_PATH) as relay:
            listener = hybridconn.HybridConnectionListener.from_connection_string(
                relay.connection_string, path=relay.path, max_workers=args.max_workers, **relay.options
            )
            hybridconn.serve_wsgi(app, listener)
            stopped_by_relay = False
            try:
                listener.open(timeout=args.timeout)
                _announce(args.app, relay)
                # Short waits keep Ctrl-C responsive and notice a listener that stopped for good (404).
                while not stop.wait(1.0):
                    if getattr(listener, "state", None) == "closed":
                        stopped_by_relay = True
                        break
            except KeyboardInterrupt:
                pass
            finally:
                listener.close(timeout=10)
            error = getattr(listener, "last_error", None)
            if stopped_by_relay and error is not None:
                print(f"hybridconn serve: error: {error}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
