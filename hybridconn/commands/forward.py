"""``hybridconn forward``: TCP port forwarding over hybrid connections, wire-compatible with azbridge.

    hybridconn forward -L [bind_address:]port:hybrid_connection[/port_name]
    hybridconn forward -R hybrid_connection[/port_name]:host:port

``-L`` listens on a local port and sends each TCP connection through the relay
(azbridge ``-L``); ``-R`` listens on the relay and connects each relayed
connection to ``host:port`` (azbridge ``-T``). Either side may be azbridge.
Several ``-L``/``-R`` may be given; the ``-R`` specs naming the same hybrid
connection share one listener and are told apart by port name. The default
port name is the port number as typed, and a remote side with a single port
accepts any numeric name, so ``-L 2222:hc`` reaches ``-R hc:host:22``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from ..exceptions import ConfigurationError
from ._common import ENV_CONNECTION_STRING, add_connection_string, connection_string_from, credential_options

NAME = "forward"
HELP = "forward TCP ports over hybrid connections (azbridge-compatible -L/-R)"

LocalSpec = Tuple[str, int, str, Optional[str]]  # bind_address, port, hybrid connection, port name
RemoteSpec = Tuple[str, Optional[str], str, int]  # hybrid connection, port name, host, port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_string(parser)
    parser.add_argument(
        "-L",
        dest="local",
        action="append",
        default=[],
        metavar="[BIND:]PORT:HC[/NAME]",
        help="accept TCP on BIND:PORT (default 127.0.0.1) and forward it to hybrid connection HC, port NAME",
    )
    parser.add_argument(
        "-R",
        dest="remote",
        action="append",
        default=[],
        metavar="HC[/NAME]:HOST:PORT",
        help="listen on hybrid connection HC and connect port NAME (default PORT) to HOST:PORT",
    )
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="seconds to connect (default 30)")


def parse_local(spec: str) -> LocalSpec:
    """``[bind_address:]port:hybrid_connection[/port_name]`` (IPv6 bind addresses in brackets)."""
    head, sep, target = spec.rpartition(":")
    if not sep or not head or not target:
        raise ConfigurationError(f"-L {spec!r}: expected [bind_address:]port:hybrid_connection[/port_name]")
    bind, _, port_text = head.rpartition(":")
    bind = bind.strip("[]") or "127.0.0.1"
    hybrid_connection, _, port_name = target.partition("/")
    return bind, _port(port_text, spec, "-L"), _hc(hybrid_connection, spec, "-L"), port_name or None


def parse_remote(spec: str) -> RemoteSpec:
    """``hybrid_connection[/port_name]:host:port`` (IPv6 hosts in brackets)."""
    head, sep, port_text = spec.rpartition(":")
    source, sep2, host = head.partition(":")
    if not sep or not sep2 or not host:
        raise ConfigurationError(f"-R {spec!r}: expected hybrid_connection[/port_name]:host:port")
    hybrid_connection, _, port_name = source.partition("/")
    return _hc(hybrid_connection, spec, "-R"), port_name or None, host.strip("[]"), _port(port_text, spec, "-R")


def _port(text: str, spec: str, flag: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigurationError(f"{flag} {spec!r}: {text!r} is not a TCP port")
    return int(text)


def _hc(name: str, spec: str, flag: str) -> str:
    if not name:
        raise ConfigurationError(f"{flag} {spec!r}: the hybrid connection name is missing")
    return name


def run(args: argparse.Namespace) -> int:
    from ..forward import LocalForwarder, RemoteForwarder

    if not args.local and not args.remote:
        print("hybridconn forward: give at least one -L or -R", file=sys.stderr)
        return 2
    connection_string = connection_string_from(args)
    if not connection_string:
        raise ConfigurationError(f"a connection string is needed: --connection-string or ${ENV_CONNECTION_STRING}")
    options = credential_options(args)
    locals_ = [parse_local(spec) for spec in args.local]
    remotes: Dict[str, Dict[str, Tuple[str, int]]] = {}
    for hybrid_connection, port_name, host, port in (parse_remote(spec) for spec in args.remote):
        remotes.setdefault(hybrid_connection, {})[port_name or str(port)] = (host, port)

    stop = threading.Event()
    started: List[Any] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for hybrid_connection, targets in remotes.items():
            remote = RemoteForwarder.from_connection_string(
                connection_string, path=hybrid_connection, targets=targets, connect_timeout=args.connect_timeout,
                **options,
            )
            started.append(remote)
            remote.start(timeout=args.connect_timeout)
            for port_name, (host, port) in targets.items():
                print(f"forwarding {hybrid_connection}/{port_name} -> {host}:{port}", flush=True)
        for bind, port, hybrid_connection, port_name in locals_:
            local = LocalForwarder.from_connection_string(
                connection_string,
                port,
                hybrid_connection,
                bind_address=bind,
                port_name=port_name,
                connect_timeout=args.connect_timeout,
                **options,
            )
            local.start()
            started.append(local)
            host, bound = local.address
            print(f"forwarding {host}:{bound} -> {hybrid_connection}/{local.port_name}", flush=True)
        print("press Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(1.0):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        for forwarder in reversed(started):
            forwarder.close(timeout=5.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
