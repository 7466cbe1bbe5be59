"""``hybridconn emulator``: run the local relay emulator until Ctrl-C.

Prints one ``export HYBRIDCONN_CONNECTION_STRING='...'`` line per hybrid
connection on stdout (ready to paste into a shell, easy to grep from a test),
then logs requests and listeners on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import signal
import threading
from typing import Any, Dict, List, Optional

from ..emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, ClientLimits, RelayEmulator
from ..emulator.fidelity import PROFILE_VARIABLE, PROFILES, Fidelity, from_environment, profile
from ..emulator.frame_relay import WS_RELAYS
from ..exceptions import ConfigurationError
from ._common import ENV_CA_CERT, export_line, listen_error, port_number

NAME = "emulator"
HELP = "run a local Azure Relay Hybrid Connections emulator"

DEFAULT_PORT = 9350

log: logging.Logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"TCP port, 0 for any free one (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--hybrid-connection", "--hc", dest="hybrid_connections", action="append", metavar="NAME",
        help="a hybrid connection to create (repeatable; default: hc1)",
    )  # fmt: skip
    parser.add_argument("--key-name", default=DEFAULT_KEY_NAME, help=f"SAS rule name (default: {DEFAULT_KEY_NAME})")
    parser.add_argument("--key", default=None, help="SAS key of that rule (default: the documented development key)")
    parser.add_argument(
        "--allow-anonymous-senders", action="append", default=[], metavar="NAME",
        help="a hybrid connection whose senders need no token (repeatable)",
    )  # fmt: skip
    parser.add_argument("--tls-certfile", default=None, help="serve wss/https with this certificate (PEM)")
    parser.add_argument("--tls-keyfile", default=None, help="the certificate's private key (PEM)")
    parser.add_argument(
        "--tls-self-signed", action="store_true", help="serve wss/https with a self-signed certificate (needs openssl)"
    )
    parser.add_argument(
        "--allow-dev-key", action="store_true",
        help="serve on a non-loopback --host with the published development key anyway "
             "(anyone who can reach the port can then listen and send)",
    )  # fmt: skip
    parser.add_argument(
        "--response-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a listener has to answer an HTTP request (default: 60)",
    )
    parser.add_argument(
        "--accept-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds a listener has to accept a connection (default: 30)",
    )
    parser.add_argument(
        "--ws-relay", choices=WS_RELAYS, default="threads",
        help="how relayed WebSockets' frames are pumped: a thread per side (threads, the default) or one "
             "thread for all (poll: for thousands at once; a peer that stops reading then stalls every "
             "relayed WebSocket for up to 30 s)",
    )  # fmt: skip
    _add_limit_arguments(parser)
    _add_fidelity_arguments(parser)


def _count(text: str) -> int:
    """argparse ``type=`` for a cap: a whole number, 0 meaning no cap."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: use 0 for no cap")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ClientLimits()
    group = parser.add_argument_group("limits", "what one client address may hold (hybridconn.emulator.ClientLimits)")
    group.add_argument(
        "--max-connections-per-client", type=_count, default=None, metavar="N",
        help="connections open at once from one address, the next answered 503; 0: no cap (needed for "
             "thousands of relayed WebSockets from one machine, where every socket comes from 127.0.0.1; "
             f"default: half the descriptor limit, {defaults.max_connections_per_client} here)",
    )  # fmt: skip
    group.add_argument(
        "--max-uploads-per-client", type=_count, default=None, metavar="N",
        help="request bodies from one address streaming to listeners at once, the next answered 503; "
             f"0: no cap (default: {defaults.max_uploads_per_client})",
    )  # fmt: skip
    group.add_argument(
        "--max-request-body", type=_count, default=None, metavar="BYTES",
        help="answer a declared Content-Length over BYTES with 413 at the request's head (default: no limit)",
    )
    group.add_argument(
        "--head-timeout", type=_seconds, default=None, metavar="S",
        help=f"seconds a request head may take to arrive (default: {defaults.head_timeout:g})",
    )
    group.add_argument(
        "--body-idle-timeout", type=_seconds, default=None, metavar="S",
        help=f"seconds a request body may go without a byte (default: {defaults.body_idle_timeout:g})",
    )


def limits_from(args: argparse.Namespace) -> ClientLimits:
    """The defaults, with the limits given on the command line."""
    changes: Dict[str, Any] = {
        name: getattr(args, name)
        for name in ("max_connections_per_client", "max_uploads_per_client", "max_request_body", "head_timeout",
                     "body_idle_timeout")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(ClientLimits(), **changes)


def _add_fidelity_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fidelity", "which service behaviours to imitate (hybridconn.emulator.fidelity)")
    group.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"a set of behaviours (default: ${PROFILE_VARIABLE}, else default)",
    )
    group.add_argument(
        "--on-ping",
        choices=("answer", "close"),
        default=None,
        help="a listener's Ping on the control channel: answer it, or drop the channel",
    )
    group.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        metavar="S",
        help="drop a listener socket idle this long (0: never; default 250, as azure-relay #33)",
    )
    group.add_argument(
        "--service-pong-interval",
        type=float,
        default=None,
        metavar="S",
        help="send the service's unsolicited Pong this often (0: never; default 210)",
    )
    group.add_argument(
        "--restart-interval",
        type=float,
        default=None,
        metavar="S",
        help="close control channels with 1011 NameRenewalFailed this often (default: never)",
    )
    group.add_argument(
        "--no-listener-status",
        type=int,
        choices=(502, 503),
        default=None,
        help="the HTTP status of a request no listener can take (default 502)",
    )
    group.add_argument(
        "--no-listener-connect-status",
        type=int,
        choices=(404, 502),
        default=None,
        help="the status of a WebSocket connect no listener can take (default 404, as Azure)",
    )
    group.add_argument(
        "--request-host",
        choices=("strip", "forward"),
        default=None,
        help="strip the sender's Host from relayed requests (default, as the article) or forward it",
    )
    group.add_argument(
        "--case-sensitive-names",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="match hybrid connection names case-sensitively (default: not, as Azure resource names)",
    )


def fidelity_from(args: argparse.Namespace) -> Fidelity:
    """The profile the arguments name, with the single options applied (0 turns a timer off)."""
    chosen = profile(args.profile) if args.profile else from_environment()
    changes: Dict[str, Any] = {}
    if args.on_ping:
        changes["on_ping"] = args.on_ping
    for name in ("no_listener_status", "no_listener_connect_status", "request_host", "case_sensitive_names"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    for name in ("idle_timeout", "service_pong_interval", "restart_interval"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value if value > 0 else None
    return chosen.replace(**changes)


def _tls(args: argparse.Namespace) -> Any:
    if args.tls_self_signed:
        return "self-signed"
    if bool(args.tls_certfile) != bool(args.tls_keyfile):
        raise ConfigurationError("--tls-certfile and --tls-keyfile go together")
    return (args.tls_certfile, args.tls_keyfile) if args.tls_certfile else None


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (``127.x``, ``::1``, ``localhost``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _check_exposure(args: argparse.Namespace) -> None:
    """Refuse a network-facing emulator whose key is the published one, unless told otherwise.

    The development key is in the documentation (and in this package): on anything but a loopback
    address it lets anyone who reaches the port register listeners and read senders' traffic.
    """
    if is_loopback(args.host) or (args.key and args.key != DEFAULT_KEY):
        return
    if not args.allow_dev_key:
        raise SystemExit(
            f"hybridconn emulator: refusing to serve on {args.host} with the published development key: anyone "
            "who can reach this port could listen and send. Pass --key with a key of your own "
            "(e.g. `openssl rand -base64 32`), or --allow-dev-key if that is really what you want."
        )
    log.warning(
        "serving on %s with the published development key (--allow-dev-key): anyone who can reach "
        "this port can listen and send",
        args.host,
    )


def run(args: argparse.Namespace) -> int:
    _check_exposure(args)
    names: List[str] = list(args.hybrid_connections or [])
    if not names and not args.allow_anonymous_senders:
        names = ["hc1"]
    relay = RelayEmulator(
        host=args.host,
        port=args.port,
        hybrid_connections=names,
        keys={args.key_name: args.key or DEFAULT_KEY},
        tls=_tls(args),
        response_timeout=args.response_timeout,
        accept_timeout=args.accept_timeout,
        anonymous_senders=args.allow_anonymous_senders,
        fidelity=fidelity_from(args),
        limits=limits_from(args),
        ws_relay=args.ws_relay,
    )
    # The emulator's INFO lines are its output, even without -v.
    emulator_log = logging.getLogger("hybridconn.emulator")
    if emulator_log.getEffectiveLevel() > logging.INFO:
        emulator_log.setLevel(logging.INFO)
    stop = threading.Event()
    previous = _on_sigterm(stop)
    try:
        relay.start()
    except OSError as exc:
        raise listen_error(exc, args.host, args.port) from exc
    try:
        for name in relay.hybrid_connections:
            print(export_line(relay.connection_string(name)), flush=True)
        if relay.certificate_path:
            print(export_line(relay.certificate_path, ENV_CA_CERT), flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()
        _restore_sigterm(previous)
    return 0


def _on_sigterm(stop: threading.Event) -> Optional[Any]:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: stop.set())


def _restore_sigterm(previous: Optional[Any]) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
