"""``hybridconn forward``: TCP port forwarding over hybrid connections, wire-compatible with azbridge.

    hybridconn forward -L [bind_address:]port:hybrid_connection[/port_name]
    hybridconn forward -R hybrid_connection[/port_name]:host:port
    hybridconn forward -H hybrid_connection:{http|https}/[host][/path]:port

``-L`` listens on a local port and sends each TCP connection through the relay
(azbridge ``-L``); ``-R`` listens on the relay and connects each relayed
connection to ``host:port`` (azbridge ``-T``). Either side may be azbridge.
``-H`` (azbridge ``-H``) relays the hybrid connection's HTTP requests to a web
server, a reverse proxy: ``https://ns/hc/x?y`` reaches ``http://host:port/path/x?y``.
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
from ._common import (ENV_CONNECTION_STRING, add_connection_string, connection_string_from, credential_options,
                      tls_options)

NAME = "forward"
HELP = "forward TCP ports and HTTP over hybrid connections (azbridge-compatible -L/-R/-H)"

LocalSpec = Tuple[str, int, str, Optional[str]]  # bind_address, port, hybrid connection, port name
RemoteSpec = Tuple[str, Optional[str], str, int]  # hybrid connection, port name, host, port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_string(parser, insecure=False)  # forward's --insecure is about its -H web servers
    parser.add_argument(
        "-L",
        dest="local",
        action="append",
        default=[],
        metavar="[BIND:]PORT[U]:HC[/NAME]",
        help="accept TCP (UDP with the U suffix, azbridge's) on BIND:PORT (default 127.0.0.1) and forward "
             "it to hybrid connection HC, port NAME (default PORT, or PORTU for UDP)",
    )
    parser.add_argument(
        "-R",
        dest="remote",
        action="append",
        default=[],
        metavar="HC[/NAME]:HOST:PORT[U]",
        help="listen on hybrid connection HC and connect port NAME (default PORT, or PORTU) to HOST:PORT "
             "(UDP with the U suffix)",
    )
    parser.add_argument(
        "-H",
        dest="http",
        action="append",
        default=[],
        metavar="HC:{http|https}/[HOST][/PATH]:PORT",
        help="relay the HTTP requests of hybrid connection HC to the web server HOST:PORT (default localhost)",
    )
    parser.add_argument("-f", "--config", dest="config", metavar="FILE",
                        help="read forwarders from an azbridge YAML configuration file (needs hybridconn[yaml]); "
                             "-L/-R/-H and --connection-string given here are added to / take precedence over it")
    parser.add_argument("--keepalive", type=float, default=30.0, metavar="SECONDS",
                        help="unsolicited pong on each idle-prone tunnel every SECONDS (default 30, azbridge's "
                             "KeepAliveInterval; 0: none), so idle tunnels survive the relay's idle drop")
    parser.add_argument("--insecure", action="store_true",
                        help="-H to https: do not verify the web server's certificate (azbridge's Insecure)")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="seconds to connect (default 30)")


def parse_local(spec: str) -> LocalSpec:
    """``[bind_address:]port:hybrid_connection[/port_name]`` (IPv6 bind addresses in brackets),
    or ``/socket/path:hybrid_connection[/port_name]`` for a Unix domain socket."""
    head, sep, target = spec.rpartition(":")
    if head.startswith("/") and target:
        hybrid_connection, _, port_name = target.partition("/")
        return head, 0, _hc(hybrid_connection, spec, "-L"), port_name or None
    if not sep or not head or not target:
        raise ConfigurationError(f"-L {spec!r}: expected [bind_address:]port:hybrid_connection[/port_name]")
    bind, _, port_text = head.rpartition(":")
    bind = bind.strip("[]") or "127.0.0.1"
    hybrid_connection, _, port_name = target.partition("/")
    return bind, _port(port_text, spec, "-L"), _hc(hybrid_connection, spec, "-L"), port_name or None


def parse_remote(spec: str) -> RemoteSpec:
    """``hybrid_connection[/port_name]:host:port`` (IPv6 hosts in brackets), or
    ``hybrid_connection[/port_name]:/socket/path`` for a Unix domain socket."""
    source, _, rest = spec.partition(":")
    if rest.startswith("/") and source:
        hybrid_connection, _, port_name = source.partition("/")
        return _hc(hybrid_connection, spec, "-R"), port_name or None, rest, 0
    head, sep, port_text = spec.rpartition(":")
    source, sep2, host = head.partition(":")
    if not sep or not sep2 or not host:
        raise ConfigurationError(f"-R {spec!r}: expected hybrid_connection[/port_name]:host:port")
    hybrid_connection, _, port_name = source.partition("/")
    return _hc(hybrid_connection, spec, "-R"), port_name or None, host.strip("[]"), _port(port_text, spec, "-R")


def split_udp(spec: str, flag: str) -> Tuple[str, bool]:
    """azbridge's UDP suffix: ``-L 5000U:hc`` / ``-R hc:host:5000U`` -> (the spec without it, True)."""
    if flag == "-L":
        head, sep, target = spec.rpartition(":")
        port = head.rpartition(":")[2]
        if sep and port[-1:] in ("U", "u") and port[:-1].isdigit():
            return head[:-1] + ":" + target, True
    elif spec[-1:] in ("U", "u") and spec.rpartition(":")[2][:-1].isdigit():
        return spec[:-1], True
    return spec, False


def _port(text: str, spec: str, flag: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigurationError(f"{flag} {spec!r}: {text!r} is not a TCP port")
    return int(text)


def _hc(name: str, spec: str, flag: str) -> str:
    if not name:
        raise ConfigurationError(f"{flag} {spec!r}: the hybrid connection name is missing")
    return name


def _http_forwarder(listener: Any, web: Any, args: argparse.Namespace) -> Any:
    from ..forward.http_proxy import HttpForwarder

    return HttpForwarder(listener, web, verify=not args.insecure, connect_timeout=args.connect_timeout)


def _parse_http(specs: List[str]) -> Dict[str, Any]:
    from ..forward.http_rules import parse_http_spec

    webs: Dict[str, Any] = {}
    for upstream in (parse_http_spec(spec) for spec in specs):
        if upstream.relay in webs:
            raise ConfigurationError(f"-H: hybrid connection {upstream.relay!r} is given twice")
        webs[upstream.relay] = upstream
    return webs


def _start_remotes(args: argparse.Namespace, cs: str, options: Dict[str, Any],
                   remotes: Dict[str, Dict[str, Tuple[str, int]]], webs: Dict[str, Any], started: List[Any]) -> None:
    from ..forward import RemoteForwarder
    from ..listener import HybridConnectionListener

    options = dict(options)
    udp_remotes = options.pop("udp")
    for hybrid_connection, targets in remotes.items():
        udp_targets = udp_remotes.get(hybrid_connection, {})
        remote = RemoteForwarder.from_connection_string(
            cs, path=hybrid_connection, targets=targets, udp_targets=udp_targets,
            connect_timeout=args.connect_timeout, stream_request_bodies=True,
            keepalive_interval=args.keepalive or None, **options,
        )
        started.append(remote)
        web = webs.pop(hybrid_connection, None)
        if web is not None:  # HTTP requests and relayed sockets share the hybrid connection's listener
            _http_forwarder(remote.listener, web, args)
        remote.start(timeout=args.connect_timeout)
        for port_name, (host, port) in targets.items():
            print(f"forwarding {hybrid_connection}/{port_name} -> {host}:{port}", flush=True)
        for port_name, (host, port) in udp_targets.items():
            print(f"forwarding {hybrid_connection}/{port_name} -> {host}:{port}/udp", flush=True)
        if web is not None:
            print(f"forwarding HTTP {hybrid_connection} -> {web.origin}{web.base_path}", flush=True)
    for web in webs.values():
        # Its own listener, built here: ``verify`` in options is the relay's (--ca-cert), while
        # HttpForwarder's own ``verify`` is the web server's (--insecure).
        listener = HybridConnectionListener.from_connection_string(
            cs, path=web.relay, stream_request_bodies=True, **options)
        proxy = _http_forwarder(listener, web, args)
        started.append(proxy)
        proxy.start(timeout=args.connect_timeout)
        print(f"forwarding HTTP {proxy.relay_url} -> {web.origin}{web.base_path}", flush=True)


def _start_locals(args: argparse.Namespace, cs: str, options: Dict[str, Any],
                  locals_: List[Tuple[LocalSpec, bool]], started: List[Any]) -> None:
    from ..forward import LocalForwarder
    from ..forward.udp import UdpLocalForwarder

    options = {k: v for k, v in options.items() if k != "udp"}
    for (bind, port, hybrid_connection, port_name), udp in locals_:
        kind: Any = UdpLocalForwarder if udp else LocalForwarder
        extra = {} if udp else {"keepalive_interval": args.keepalive or None}
        local = kind.from_connection_string(
            cs, port, hybrid_connection, bind_address=bind, port_name=port_name,
            connect_timeout=args.connect_timeout, **extra, **options,
        )
        local.start()
        started.append(local)
        host, bound = local.address
        print(f"forwarding {host}:{bound}{'/udp' if udp else ''} -> {hybrid_connection}/{local.port_name}",
              flush=True)


def _apply_config(args: argparse.Namespace) -> Optional[str]:
    """Merge ``-f FILE`` into ``args``; the file's connection string (the command line's wins)."""
    if not getattr(args, "config", None):
        return None
    from ..forward.config import load_config

    config = load_config(args.config)
    args.local = config.local + list(args.local)
    args.remote = config.remote + list(args.remote)
    args.http = config.http + list(args.http)
    args.insecure = args.insecure or config.insecure
    if config.connect_timeout is not None:
        args.connect_timeout = config.connect_timeout
    if config.keepalive_interval is not None:
        args.keepalive = config.keepalive_interval
    return config.connection_string


def _report(started: List[Any]) -> None:
    """One line per forwarder with its counters, on exit (azbridge logs none)."""
    for forwarder in started:
        counters = getattr(forwarder, "counters", None)
        if counters:
            text = " ".join(f"{k}={v}" for k, v in counters.items())
            print(f"{forwarder!r}: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from_file = _apply_config(args)
    if not args.local and not args.remote and not args.http:
        print("hybridconn forward: give at least one -L, -R or -H", file=sys.stderr)
        return 2
    # as azbridge: the command line over the file; the environment only when neither says
    connection_string = getattr(args, "connection_string", None) or from_file or connection_string_from(args)
    if not connection_string:
        raise ConfigurationError(f"a connection string is needed: --connection-string or ${ENV_CONNECTION_STRING}")
    options = {**credential_options(args), **tls_options(args, insecure=False)}
    locals_: List[Tuple[LocalSpec, bool]] = []
    for spec, udp in (split_udp(s, "-L") for s in args.local):
        locals_.append((parse_local(spec), udp))
    remotes: Dict[str, Dict[str, Tuple[str, int]]] = {}
    udp_remotes: Dict[str, Dict[str, Tuple[str, int]]] = {}
    for spec, udp in (split_udp(s, "-R") for s in args.remote):
        hybrid_connection, port_name, host, port = parse_remote(spec)
        table = udp_remotes if udp else remotes
        default = f"{port}U" if udp else host if host.startswith("/") else str(port)  # azbridge's default names
        table.setdefault(hybrid_connection, {})[port_name or default] = (host, port)
        remotes.setdefault(hybrid_connection, {})
    options["udp"] = udp_remotes
    webs = _parse_http(args.http)

    stop = threading.Event()
    started: List[Any] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _start_remotes(args, connection_string, options, remotes, webs, started)
        _start_locals(args, connection_string, options, locals_, started)
        print("press Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(1.0):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        for forwarder in reversed(started):
            forwarder.close(timeout=5.0)
        _report(started)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
