"""UDP datagrams/s and ``-H`` HTTP requests/s through the relay emulator, against the same upstream hit directly.

    .venv/bin/python bench/forward_udp_http.py [--datagrams 20000] [--requests 2000] [--window 32]

UDP: a client sends 100-byte datagrams to a UDP echo server, at most ``--window`` outstanding,
directly and through UdpLocalForwarder -> emulator -> RemoteForwarder; echoed datagrams/s and loss.
HTTP: sequential GETs of a 1 kB body on one keep-alive session, directly to an ``http.server``
and through the emulator and HttpForwarder (-H); requests/s. Prints each rate and the ratio
(relayed / direct). Everything runs in one process on loopback: ratios, not absolute figures,
are what carry over to another machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the repository: tests.support

import requests  # noqa: E402

from hybridconn.emulator import RelayEmulator  # noqa: E402
from hybridconn.forward import RemoteForwarder  # noqa: E402
from hybridconn.forward.http_proxy import HttpForwarder  # noqa: E402
from hybridconn.forward.http_rules import parse_http_spec  # noqa: E402
from hybridconn.forward.udp import UdpLocalForwarder  # noqa: E402
from tests.support.plain_clients import Sender  # noqa: E402

BODY = b"x" * 1000


class _Echo(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="bench-udp-echo", daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            self.sock.sendto(data, peer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def udp_rate(address: Tuple[str, int], count: int, window: int) -> Tuple[float, int]:
    """(echoed datagrams per second, datagrams lost)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sent = received = lost = 0
    started = time.perf_counter()
    try:
        while received + lost < count:
            while sent < count and sent - received - lost < window:
                sock.sendto(sent.to_bytes(4, "big") + b"d" * 96, address)
                sent += 1
            try:
                sock.recvfrom(2048)
                received += 1
            except socket.timeout:
                lost = sent - received
    finally:
        sock.close()
    return received / (time.perf_counter() - started), lost


def http_rate(session: requests.Session, url: str, headers: dict, count: int) -> float:
    session.get(url, headers=headers, timeout=30).raise_for_status()  # warm the pools
    started = time.perf_counter()
    for _ in range(count):
        r = session.get(url, headers=headers, timeout=30)
        if r.status_code != 200 or r.content != BODY:
            raise RuntimeError(f"bad answer {r.status_code}")
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datagrams", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()
    echo = _Echo()
    echo.start()
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    web.daemon_threads = True
    web_thread = threading.Thread(target=web.serve_forever, name="bench-http", daemon=True)
    web_thread.start()
    try:
        with RelayEmulator(hybrid_connections=["udp", "web"]) as relay:
            cs_udp, cs_web = relay.connection_string("udp"), relay.connection_string("web")
            remote = RemoteForwarder.from_connection_string(cs_udp, udp_targets={"5000U": ("127.0.0.1", echo.port)})
            local = UdpLocalForwarder.from_connection_string(cs_udp, 0, port_name="5000U")
            proxy = HttpForwarder.from_connection_string(
                cs_web, parse_http_spec(f"web:http/127.0.0.1:{web.server_address[1]}")
            )
            remote.start(timeout=15)
            local.start()
            proxy.start(timeout=15)
            try:
                direct, _ = udp_rate(("127.0.0.1", echo.port), args.datagrams, args.window)
                relayed, lost = udp_rate(local.address, args.datagrams, args.window)
                print(f"UDP {args.datagrams} x 100 B, window {args.window}: direct {direct:,.0f}/s, "
                      f"relayed {relayed:,.0f}/s, ratio {relayed / direct:.3f}, lost {lost}")
                sender = Sender(relay, "web")
                with requests.Session() as session:
                    direct_http = http_rate(session, f"http://127.0.0.1:{web.server_address[1]}/", {}, args.requests)
                with requests.Session() as session:
                    relayed_http = http_rate(session, sender.url("/"), sender.headers, args.requests)
                sender.close()
                print(f"HTTP GET 1 kB x {args.requests}, sequential: direct {direct_http:,.0f} req/s, "
                      f"-H {relayed_http:,.0f} req/s, ratio {relayed_http / direct_http:.3f}")
            finally:
                proxy.close()
                local.close()
                remote.close()
    finally:
        echo.stop.set()
        web.shutdown()
        web.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
