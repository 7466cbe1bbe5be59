"""Load: many concurrent WebSocket connections through one listener, many concurrent HTTP requests
with bodies; all complete byte-exact. Memory per idle relayed connection is reported (RSS delta /
count; all three parties - sender, emulator, listener - live in this one process)."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

import pytest

from hybridconn import HybridConnection
from hybridconn.emulator import RelayEmulator
from tests.support.endpoints import echo_connection, echo_request, make_client, make_listener
from tests.support.measure import ensure_fd_limit, rss_bytes



def _websockets(count: int, record_property: Any) -> None:
    limit = ensure_fd_limit(count * 5 + 512)
    assert limit >= count * 4 + 256, f"RLIMIT_NOFILE {limit} is too low for {count} relayed sockets"
    with RelayEmulator(accept_timeout=60) as relay:
        listener = make_listener(relay, max_workers=count + 8, max_pending=count)
        listener.on_connection = echo_connection
        client = make_client(relay)
        conns: List[HybridConnection] = []
        lock = threading.Lock()
        try:
            listener.open(timeout=15)
            with client.connect(timeout=30) as warm:  # first-use costs out of the measurement
                warm.send("warm")
                assert warm.recv(timeout=10) == "warm"
            before = rss_bytes()

            def open_one(n: int) -> None:
                conn = client.connect(timeout=60, headers={"X-N": str(n)})
                with lock:
                    conns.append(conn)
                conn.send(f"hello {n}")
                assert conn.recv(timeout=30) == f"hello {n}"

            with ThreadPoolExecutor(32, thread_name_prefix="test-open") as pool:
                list(pool.map(open_one, range(count)))
            assert len(conns) == count
            assert listener.stats["accepted"] >= count
            idle_rss = rss_bytes()
            per_connection = (idle_rss - before) / count

            def exchange(conn: HybridConnection) -> int:
                rng = random.Random(id(conn))
                moved = 0
                for turn in range(10):
                    message: Any = os.urandom(rng.choice((1, 100, 4000, 70_000))) if turn % 2 else f"t{turn}-{conn.id}"
                    conn.send(message)
                    assert conn.recv(timeout=60) == message
                    moved += len(message)
                return moved

            with ThreadPoolExecutor(64, thread_name_prefix="test-exchange") as pool:
                moved = sum(pool.map(exchange, conns))
            figures = (f"{count} concurrent websockets x 10 messages byte-exact ({moved / 1e6:.1f} MB echoed); "
                       f"idle memory per relayed connection {per_connection / 1024:.0f} KiB "
                       f"(RSS {before / 2**20:.0f} -> {idle_rss / 2**20:.0f} MiB, all three parties in-process)")
            print(f"\n[reliability] load: {figures}")
            record_property("figures", figures)
        finally:
            with ThreadPoolExecutor(32, thread_name_prefix="test-close") as pool:
                list(pool.map(lambda c: c.close(timeout=10), conns))
            client.close()
            listener.close(timeout=30)


def _http(count: int, record_property: Any) -> None:
    ensure_fd_limit(count * 6 + 512)
    with RelayEmulator() as relay:
        listener = make_listener(relay, max_workers=min(count, 64), max_pending=count)
        listener.on_request = echo_request
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            start = threading.Barrier(count)

            def one(n: int) -> int:
                body = os.urandom(random.Random(n).choice((0, 10, 1000, 60_000, 70_000, 300_000)))
                start.wait(60)  # all at once
                response = client.request("POST", f"/load/{n}", data=body, timeout=(30, 90))
                assert response.status_code == 200, (n, response.status_code)
                assert response.content == f"/load/{n}|".encode() + body, n
                return len(body)

            with ThreadPoolExecutor(count, thread_name_prefix="test-http") as pool:
                sizes = list(pool.map(one, range(count)))
            by_rendezvous = sum(1 for s in sizes if s > 65536)
            figures = (f"{count} concurrent HTTP requests byte-exact ({sum(sizes) / 1e6:.1f} MB up and back; "
                       f"{by_rendezvous} by rendezvous)")
            print(f"\n[reliability] load: {figures}")
            record_property("figures", figures)
        finally:
            client.close()
            listener.close(timeout=30)


def test_100_concurrent_websockets_through_one_listener(record_property: Any) -> None:
    _websockets(100, record_property)


def test_50_concurrent_http_requests_with_bodies(record_property: Any) -> None:
    _http(50, record_property)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_500_concurrent_websockets_through_one_listener(record_property: Any) -> None:
    _websockets(500, record_property)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_200_concurrent_http_requests_with_bodies(record_property: Any) -> None:
    _http(200, record_property)
