"""Measurement loops for bench/run.py: HTTP requests, WebSocket echo, bulk, accepts, idle memory,
thousands of WebSockets at once.

Every loop runs a fixed count (after a warm-up) with a wall-clock cap, and
returns a plain dict: ``ops``, ``elapsed`` (s), ``rate`` (ops/s), ``bytes``,
``lat_us`` (per-operation latencies, µs) where it measures latency.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import requests
import websocket

from procs import Proc

Message = Any


class PlainWS:
    """websocket-client against the plain server, with the same surface as HybridConnection.

    UTF-8 is checked by ``bytes.decode`` (C), not websocket-client's pure-Python
    validator (skip_utf8_validation), as hybridconn does: otherwise a 16 kB
    text echo costs ~3 ms of client CPU and the plain baseline is not a ceiling.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, skip_utf8_validation=True,
                                              enable_multithread=True)

    def send(self, message: Message) -> None:
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(message)

    def recv(self, timeout: Optional[float] = None) -> Message:
        return self.ws.recv()

    def close(self, timeout: float = 5.0) -> None:
        self.ws.close(timeout=timeout)


@dataclass
class System:
    """One side of a comparison: where its HTTP goes, how its WebSockets connect, which processes serve it."""

    name: str
    http_host: str = "127.0.0.1"
    http_port: int = 0
    http_prefix: str = ""
    http_headers: Dict[str, str] = field(default_factory=dict)
    ws_connect: Optional[Callable[[str], Any]] = None
    procs: Dict[str, Proc] = field(default_factory=dict)  # role -> process, for CPU accounting
    memory_proc: Optional[Proc] = None  # the process holding the listener side of each socket


class _RequestsConn:
    """A requests.Session with the http.client-like surface the loops use (what HybridConnectionClient sends with)."""

    def __init__(self, system: System, timeout: float) -> None:
        self.session = requests.Session()
        self.base = f"http://{system.http_host}:{system.http_port}"
        self.timeout = timeout

    def get(self, system: System, route: str) -> int:
        response = self.session.get(self.base + system.http_prefix + route, headers=system.http_headers,
                                    timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"{system.name}: GET {route} -> {response.status_code} {response.content[:200]!r}")
        return len(response.content)

    def close(self) -> None:
        self.session.close()


class _PlainConn:
    """http.client keep-alive connection with TCP_NODELAY: a light sender, so the servers are measured."""

    def __init__(self, system: System, timeout: float) -> None:
        self.conn = http.client.HTTPConnection(system.http_host, system.http_port, timeout=timeout)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, system: System, route: str) -> int:
        self.conn.request("GET", system.http_prefix + route, headers=system.http_headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{system.name}: GET {route} -> {response.status} {body[:200]!r}")
        return len(body)

    def close(self) -> None:
        self.conn.close()


def _new_http(system: System, timeout: float, client: str = "http.client") -> Any:
    return _RequestsConn(system, timeout) if client == "requests" else _PlainConn(system, timeout)


def _get(conn: Any, system: System, route: str) -> int:
    return conn.get(system, route)  # type: ignore[no-any-return]


def _threads(n: int, target: Callable[[int], None], cap: float) -> float:
    """Run ``target(i)`` in n threads released together; wall seconds from release to the last end."""
    barrier = threading.Barrier(n + 1)
    errors: List[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(cap)
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"bench-sender-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    barrier.wait(cap)
    started = time.perf_counter()
    deadline = time.monotonic() + cap
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    elapsed = time.perf_counter() - started
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"senders still running after {cap} s")
    if errors:
        raise errors[0]
    return elapsed


def http_requests(system: System, route: str, senders: int, count: int, cap: float = 120.0,
                  fresh: bool = False, client: str = "http.client") -> Dict[str, Any]:
    """``count`` GETs split over ``senders`` keep-alive connections (one thread each).

    ``fresh``: a new TCP connection for every request (hyco-https 1.4.5 never answers a
    second request that the relay routes over the rendezvous socket of a >64 kB response,
    spec section "rendezvous"; so the 1 MB figures use one connection per request for all).
    """
    conns = [_new_http(system, 30.0, client) for _ in range(senders)]
    try:
        for i in range(senders):  # warm-up: every connection, a few requests
            for _ in range(max(2, count // (10 * senders))):
                if fresh:
                    conns[i].close()
                    conns[i] = _new_http(system, 30.0, client)
                _get(conns[i], system, route)
        per = max(1, count // senders)
        lat: List[List[float]] = [[] for _ in range(senders)]
        size = [0] * senders

        def sender(i: int) -> None:
            conn, mine = conns[i], lat[i]
            clock = time.perf_counter_ns
            total = 0
            for _ in range(per):
                t0 = clock()
                if fresh:
                    conn.close()
                    conn = conns[i] = _new_http(system, 30.0, client)
                total += _get(conn, system, route)
                mine.append((clock() - t0) / 1000)
            size[i] = total

        elapsed = _threads(senders, sender, cap)
    finally:
        for conn in conns:
            conn.close()
    ops = per * senders
    return {"ops": ops, "elapsed": elapsed, "rate": ops / elapsed, "bytes": sum(size),
            "lat_us": [x for part in lat for x in part]}


def ws_echo(system: System, payload: Message, conns: int, count: int, cap: float = 120.0) -> Dict[str, Any]:
    """``count`` round trips of ``payload`` split over ``conns`` connections to /echo."""
    assert system.ws_connect is not None
    sockets = [system.ws_connect("echo") for _ in range(conns)]
    try:
        for ws in sockets:
            for _ in range(max(2, count // (10 * conns))):
                ws.send(payload)
                ws.recv(timeout=30)
        per = max(1, count // conns)
        lat: List[List[float]] = [[] for _ in range(conns)]

        def sender(i: int) -> None:
            ws, mine = sockets[i], lat[i]
            clock = time.perf_counter_ns
            for _ in range(per):
                t0 = clock()
                ws.send(payload)
                echoed = ws.recv(timeout=30)
                mine.append((clock() - t0) / 1000)
            if type(echoed) is not type(payload) or len(echoed) != len(payload):
                raise RuntimeError(f"{system.name}: echo changed the message")

        elapsed = _threads(conns, sender, cap)
    finally:
        for ws in sockets:
            ws.close(timeout=5)
    ops = per * conns
    return {"ops": ops, "elapsed": elapsed, "rate": ops / elapsed, "lat_us": [x for part in lat for x in part]}


def ws_upload(system: System, total: int, size: int, cap: float = 120.0) -> Dict[str, Any]:
    """Send ``total`` bytes as ``size``-byte binary messages to /sink; MB/s until its count comes back."""
    assert system.ws_connect is not None
    ws = system.ws_connect("sink")
    try:
        chunk = bytes(size)
        ws.send(chunk)
        ws.send("done")
        ws.recv(timeout=30)
        deadline = time.monotonic() + cap
        started = time.perf_counter()
        for _ in range(total // size):
            ws.send(chunk)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: upload took over {cap} s")
        ws.send("done")
        counted = int(ws.recv(timeout=cap))
        elapsed = time.perf_counter() - started
    finally:
        ws.close(timeout=5)
    if counted != total // size * size:
        raise RuntimeError(f"{system.name}: sink counted {counted} bytes")
    return {"ops": total // size, "elapsed": elapsed, "rate": counted / elapsed / 1e6, "bytes": counted}


def ws_download(system: System, total: int, size: int, cap: float = 120.0) -> Dict[str, Any]:
    """Ask /source for ``total`` bytes in ``size``-byte messages; MB/s until its ``done``."""
    assert system.ws_connect is not None
    ws = system.ws_connect("source")
    try:
        got = 0
        started = time.perf_counter()
        ws.send(f"go {total} {size}")
        deadline = time.monotonic() + cap
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, str):
                break
            got += len(message)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: download took over {cap} s")
        elapsed = time.perf_counter() - started
    finally:
        ws.close(timeout=5)
    if got != total // size * size:
        raise RuntimeError(f"{system.name}: received {got} bytes")
    return {"ops": total // size, "elapsed": elapsed, "rate": got / elapsed / 1e6, "bytes": got}


def accepts(system: System, count: int, cap: float = 120.0) -> Dict[str, Any]:
    """Sequential connect + first echo + close; latency is connect until the first echo."""
    assert system.ws_connect is not None
    lat: List[float] = []
    deadline = time.monotonic() + cap
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for _ in range(count):
        t0 = clock()
        ws = system.ws_connect("echo")
        try:
            ws.send(b"x")
            ws.recv(timeout=30)
            lat.append((clock() - t0) / 1000)
        finally:
            ws.close(timeout=5)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{system.name}: {count} accepts took over {cap} s")
    elapsed = time.perf_counter() - started
    return {"ops": count, "elapsed": elapsed, "rate": count / elapsed, "lat_us": lat}


def idle_memory(system: System, count: int, cap: float = 180.0) -> Dict[str, Any]:
    """RSS growth of the listener-side process per idle relayed connection (``count`` held open)."""
    assert system.ws_connect is not None and system.memory_proc is not None
    proc = system.memory_proc
    warm = [system.ws_connect("echo") for _ in range(20)]  # pools, caches, first-use allocations
    for ws in warm:
        ws.send(b"x")
        ws.recv(timeout=30)
    for ws in warm:
        ws.close(timeout=5)
    time.sleep(1.0)  # let the far side finish closing before the baseline
    before, threads_before = proc.rss_kb(), proc.threads()
    held: List[Any] = []
    deadline = time.monotonic() + cap
    try:
        for _ in range(count):
            ws = system.ws_connect("echo")
            held.append(ws)
            ws.send(b"x")  # the echo proves the listener's side is set up and serving
            ws.recv(timeout=30)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: opening {count} connections took over {cap} s")
        time.sleep(1.0)
        after, threads_after = proc.rss_kb(), proc.threads()
    finally:
        for ws in held:
            try:
                ws.close(timeout=2)
            except Exception:  # noqa: BLE001 - tearing down; keep closing the rest
                pass
    return {"ops": count, "rss_before_kb": before, "rss_after_kb": after,
            "kb_per_conn": (after - before) / count, "threads_per_conn": (threads_after - threads_before) / count}


def many_ws(system: System, count: int, openers: int = 16, cap: float = 600.0) -> Dict[str, Any]:
    """``count`` relayed WebSockets open at once, each echoing 64 B byte-exact, then one more echo round.

    ``rate``: connections opened per second (``openers`` threads, each connection proven by its
    first echo). Also the listener process's threads and RSS growth per connection with all of
    them open and idle (``threads``, ``kb_per_conn``).
    """
    assert system.ws_connect is not None and system.memory_proc is not None
    proc = system.memory_proc
    warm = system.ws_connect("echo")
    warm.send(b"warm")
    warm.recv(timeout=30)
    warm.close(timeout=5)
    time.sleep(1.0)
    before = proc.rss_kb()
    held: List[Any] = []
    lock = threading.Lock()
    deadline = time.monotonic() + cap

    def open_some(i: int) -> None:
        for n in range(i, count, openers):
            ws = system.ws_connect("echo")
            with lock:
                held.append(ws)
            payload = n.to_bytes(8, "big") * 8
            ws.send(payload)
            if ws.recv(timeout=120) != payload:
                raise RuntimeError(f"{system.name}: connection {n} echoed the wrong bytes")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: opening {count} connections took over {cap} s")

    try:
        elapsed = _threads(openers, open_some, cap)
        time.sleep(1.0)
        after, threads = proc.rss_kb(), proc.threads()
        for n, ws in enumerate(held):  # a second round on every connection, all open at once
            ws.send(bytes([n % 256]) * 64)
        for n, ws in enumerate(held):
            if ws.recv(timeout=120) != bytes([n % 256]) * 64:
                raise RuntimeError(f"{system.name}: connection {n} echoed the wrong bytes")
    finally:
        for ws in held:
            try:
                ws.close(timeout=2)
            except Exception:  # noqa: BLE001 - tearing down; keep closing the rest
                pass
    return {"ops": count, "elapsed": elapsed, "rate": count / elapsed, "threads": threads,
            "rss_before_kb": before, "rss_after_kb": after, "kb_per_conn": (after - before) / count}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]
