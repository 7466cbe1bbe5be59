"""Thousands of relayed WebSockets echoing byte-exact through one multiplexed listener (``on_message``).

The emulator runs in a process of its own (tests/support/big_emulator.py: four sockets per relayed
WebSocket would not fit one process's descriptor limit), with 256 KiB thread stacks; senders and
the listener share this process. Reported, not timed: the listener's threads at full load
(asserted: ``max_workers`` plus a few, whatever the count), the listener's memory per idle
WebSocket (tracemalloc, allocations made under hybridconn/_listener; asserted under 10 KiB), and
what the connections cost the emulator (threads, RSS, CPU).
"""

from __future__ import annotations

import os
import random
import resource
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Union

import pytest

from hybridconn import HybridConnection, HybridConnectionClient, HybridConnectionListener
from tests.support.measure import ensure_fd_limit, live_hybridconn_threads, wait_until
from tests.support.processes import ChildProcess

MAX_WORKERS = 16
LISTENER_CODE = "*/hybridconn/_listener/*"
Message = Union[str, bytes]


def echo(conn: HybridConnection, message: Message) -> None:
    conn.send(message)


def emulator_stats(emulator: ChildProcess) -> Dict[str, float]:
    emulator.send_line("stats")
    line = emulator.wait_for("STATS ", timeout=60)
    return {key: float(value) for key, value in (item.split("=") for item in line.split()[1:])}


def listener_bytes() -> int:
    """Bytes now allocated by the listener's code (any frame under hybridconn/_listener)."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, LISTENER_CODE, all_frames=True)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _open_all(client: HybridConnectionClient, count: int) -> List[HybridConnection]:
    conns: List[HybridConnection] = []
    lock = threading.Lock()

    def open_one(n: int) -> None:
        conn = client.connect(timeout=120, headers={"X-N": str(n)})
        with lock:
            conns.append(conn)

    with ThreadPoolExecutor(16, thread_name_prefix="test-open") as pool:
        list(pool.map(open_one, range(count)))
    return conns


def _echo_round(conns: List[HybridConnection], turn: int) -> int:
    """Every connection sends one message (sizes and kinds mixed), then reads its echo; bytes moved."""

    def run(part: List[HybridConnection]) -> int:
        rng = random.Random(turn * 7919 + len(part))
        sent: List[Message] = []
        for conn in part:
            size = rng.choice((0, 1, 64, 125, 126, 4000, 65_536, 70_000))
            message: Message = os.urandom(size) if rng.random() < 0.7 else f"{turn}:{conn.id}:" + "é" * (size // 2)
            conn.send(message)
            sent.append(message)
        for conn, message in zip(part, sent):
            got = conn.recv(timeout=120)
            assert type(got) is type(message) and got == message, conn.id
        return sum(len(m) for m in sent)

    parts = [conns[i::8] for i in range(8)]
    with ThreadPoolExecutor(8, thread_name_prefix="test-echo") as pool:
        return sum(pool.map(run, parts))


def _many(count: int, start_process: Callable[..., ChildProcess], record_property: Any) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = ensure_fd_limit(hard if hard != resource.RLIM_INFINITY else count * 3 + 1024)
    assert limit >= count * 2 + 512, f"RLIMIT_NOFILE {limit} is too low for {count} relayed WebSockets"
    emulator = start_process(["-m", "tests.support.big_emulator", "256"], stdin_pipe=True, name="big emulator")
    connection_string = emulator.connection_string()
    listener = HybridConnectionListener.from_connection_string(connection_string, max_workers=MAX_WORKERS)
    listener.on_message = echo
    closed = threading.Semaphore(0)
    listener.on_close = lambda conn: closed.release()
    client = HybridConnectionClient.from_connection_string(connection_string)
    conns: List[HybridConnection] = []
    traced = count <= 1000  # tracing 30 frames deep slows every allocation: the bounded run measures
    if traced:
        tracemalloc.start(30)
    try:
        listener.open(timeout=30)
        with client.connect(timeout=60) as warm:  # first-use costs out of the measurement
            warm.send("warm")
            assert warm.recv(timeout=30) == "warm"
        assert wait_until(lambda: listener.stats["multiplexed"] == 0, timeout=30)
        emulator_before, listener_before = emulator_stats(emulator), (listener_bytes() if traced else 0)
        conns = _open_all(client, count)
        assert wait_until(lambda: listener.stats["multiplexed"] == count, timeout=120), listener.stats
        per_socket = (listener_bytes() - listener_before) / count if traced else None
        if traced:
            tracemalloc.stop()
        emulator_after = emulator_stats(emulator)
        threads = sorted(t.name for t in live_hybridconn_threads())
        moved = sum(_echo_round(conns, turn) for turn in range(2))
        busiest = len(live_hybridconn_threads())
        assert len(threads) <= MAX_WORKERS + 6 and busiest <= MAX_WORKERS + 6, threads
        if per_socket is not None:
            assert per_socket <= 10 * 1024, f"{per_socket:.0f} bytes of listener memory per idle WebSocket"
        memory = "not traced" if per_socket is None else f"{per_socket / 1024:.1f} KiB per idle WebSocket (tracemalloc)"
        figures = (
            f"{count} concurrent relayed WebSockets, multiplexed, 2 echo rounds byte-exact ({moved / 1e6:.1f} MB); "
            f"listener: {max(len(threads), busiest)} threads (max_workers={MAX_WORKERS}), "
            f"{memory}; emulator: "
            f"{(emulator_after['threads'] - emulator_before['threads']) / count:.1f} threads and "
            f"{(emulator_after['rss'] - emulator_before['rss']) / count / 1024:.1f} KiB RSS per WebSocket, "
            f"{(emulator_after['cpu'] - emulator_before['cpu']) * 1e3 / count:.2f} ms CPU per accept")
        print(f"\n[reliability] multiplex: {figures}")
        record_property("figures", figures)
        for conn in conns:
            conn.close(timeout=30)
        assert all(closed.acquire(timeout=60) for _ in range(count + 1))  # the warm-up's close, then each one
        assert wait_until(lambda: listener.stats["multiplexed"] == 0, timeout=60), listener.stats
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        for conn in conns:
            conn.abort()
        client.close()
        listener.close(timeout=30)
        emulator.close_stdin()
        emulator.wait(30)


@pytest.mark.timeout(600)
def test_300_concurrent_multiplexed_websockets_echo_byte_exact(start_process: Any, record_property: Any) -> None:
    _many(300, start_process, record_property)


@pytest.mark.stress
@pytest.mark.timeout(1800)
def test_5000_concurrent_multiplexed_websockets_echo_byte_exact(start_process: Any, record_property: Any) -> None:
    _many(5000, start_process, record_property)
