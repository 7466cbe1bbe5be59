"""The multiplexed WebSocket mode (``on_message``/``on_open``/``on_close``) through the emulator:
echo, per-connection order, one reader thread, sends from other threads, back-pressure, crashes, closes."""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Dict, List, Tuple, Union

import pytest
import websocket

from hybridconn import HybridConnection
from hybridconn.listener import HybridConnectionListener
from hybridconn._listener.multiplex import MAX_QUEUED
from tests.support.measure import live_hybridconn_threads, wait_until
from tests.support.plain_clients import Sender, read_close

Make = Callable[..., HybridConnectionListener]
Message = Union[str, bytes]
WAIT = 30.0


def listener_threads() -> "set[str]":
    """The names of the live hybridconn threads that are not the emulator's."""
    return {t.name for t in live_hybridconn_threads() if not t.name.startswith("hybridconn-emulator")}


def echo(conn: HybridConnection, message: Message) -> None:
    conn.send(message)


@pytest.fixture
def mux_listener(make_listener: Make) -> HybridConnectionListener:
    listener = make_listener(open=False, max_workers=4)
    listener.on_message = echo
    listener.open(timeout=15)
    return listener


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_536, 1024 * 1024])
def test_binary_echo_is_byte_exact(mux_listener: HybridConnectionListener, sender: Sender, size: int) -> None:
    ws = sender.connect()
    payload = os.urandom(size)
    ws.send_binary(payload)
    opcode, data = ws.recv_data()
    assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, payload)
    ws.close()


def test_text_echo(mux_listener: HybridConnectionListener, sender: Sender) -> None:
    ws = sender.connect()
    ws.send("héllo ✓")
    assert ws.recv() == "héllo ✓"
    ws.close()


def test_messages_of_one_connection_arrive_in_order_one_at_a_time(make_listener: Make, sender: Sender) -> None:
    seen: Dict[str, List[int]] = {}
    running: Dict[str, int] = {}
    overlaps: List[str] = []
    lock = threading.Lock()

    def handle(conn: HybridConnection, message: Message) -> None:
        with lock:
            running[conn.id] = running.get(conn.id, 0) + 1
            if running[conn.id] > 1:
                overlaps.append(conn.id)
        seen.setdefault(conn.id, []).append(int(message))
        conn.send(message)
        with lock:
            running[conn.id] -= 1

    listener = make_listener(open=False, max_workers=8)
    listener.on_message = handle
    listener.open(timeout=15)
    sockets = [sender.connect() for _ in range(6)]
    for n in range(200):
        for ws in sockets:
            ws.send(str(n))
    for ws in sockets:
        assert [int(ws.recv()) for _ in range(200)] == list(range(200))
        ws.close()
    assert overlaps == []
    assert sorted(len(v) for v in seen.values()) == [200] * 6
    assert all(v == list(range(200)) for v in seen.values())


def test_open_and_close_hooks_bracket_the_messages(make_listener: Make, sender: Sender) -> None:
    events: "queue.Queue[Tuple[str, str, object]]" = queue.Queue()
    listener = make_listener(open=False)
    listener.on_open = lambda conn: events.put(("open", conn.id, conn.path))
    listener.on_message = lambda conn, message: events.put(("message", conn.id, message))
    listener.on_close = lambda conn: events.put(("close", conn.id, conn.close_code))
    listener.open(timeout=15)
    ws = sender.connect(suffix="/room")
    ws.send("a")
    ws.send_binary(b"b")
    ws.close(status=4001)
    got = [events.get(timeout=WAIT) for _ in range(4)]
    conn_id = got[0][1]
    assert got == [("open", conn_id, "/room"), ("message", conn_id, "a"), ("message", conn_id, b"b"),
                   ("close", conn_id, 4001)]


def test_send_from_another_thread_and_many_sockets_share_one_reader(make_listener: Make, sender: Sender) -> None:
    opened: "queue.Queue[HybridConnection]" = queue.Queue()
    listener = make_listener(open=False, max_workers=2)
    listener.on_open = opened.put
    listener.on_message = echo
    listener.open(timeout=15)
    before = listener_threads()
    sockets = [sender.connect() for _ in range(40)]
    conns = [opened.get(timeout=WAIT) for _ in sockets]
    pushers = [threading.Thread(target=conn.send, args=(f"push {conn.id}",)) for conn in conns]
    for thread in pushers:
        thread.start()
    for thread in pushers:
        thread.join(WAIT)
    pushed = sorted(ws.recv() for ws in sockets)
    assert pushed == sorted(f"push {conn.id}" for conn in conns)
    for ws in sockets:
        ws.send("x")
        assert ws.recv() == "x"
    new = listener_threads() - before
    assert [name for name in new if "mux" in name] == [f"hybridconn-mux-{listener.name}"]
    assert len(new) <= 2 + 1 + 1  # max_workers handler threads, the reader, an overflow/accept helper at most
    assert listener.stats["multiplexed"] == 40
    for ws in sockets:
        ws.close()


def test_a_slow_handler_does_not_stall_others_and_its_socket_is_no_longer_read(make_listener: Make,
                                                                             sender: Sender) -> None:
    release = threading.Event()
    slow_started = threading.Event()
    handled: Dict[str, int] = {}

    def handle(conn: HybridConnection, message: Message) -> None:
        if message == b"slow" or (isinstance(message, bytes) and message.startswith(b"fill")):
            slow_started.set()
            release.wait(WAIT)
        handled[conn.id] = handled.get(conn.id, 0) + 1
        if isinstance(message, str):
            conn.send(message)

    listener = make_listener(open=False, max_workers=3)
    listener.on_message = handle
    listener.open(timeout=15)
    slow = sender.connect()
    slow.send_binary(b"slow")
    assert slow_started.wait(WAIT)
    blob = b"fill" + os.urandom(60_000)
    # Far more than the lane and every socket buffer on the way (tcp_rmem/wmem max 6 MB each, four
    # sockets) hold: the reader stops reading the socket, so TCP pushes back on the sender.
    flood = threading.Thread(target=lambda: [slow.send_binary(blob) for _ in range(MAX_QUEUED * 60)], daemon=True)
    flood.start()
    fast = [sender.connect() for _ in range(3)]
    for n in range(20):
        for ws in fast:
            ws.send(f"m{n}")
            assert ws.recv() == f"m{n}"
    assert flood.is_alive()  # the sender is blocked: nothing reads that socket any more
    assert sum(handled.values()) == 60
    release.set()
    flood.join(WAIT * 2)
    assert not flood.is_alive()
    for ws in [slow, *fast]:
        ws.close()


def test_a_crashing_handler_closes_its_socket_1011(make_listener: Make, sender: Sender) -> None:
    def handle(conn: HybridConnection, message: Message) -> None:
        if message == "boom":
            raise RuntimeError("handler bug")
        conn.send(message)

    listener = make_listener(open=False)
    listener.on_message = handle
    listener.open(timeout=15)
    good = sender.connect()
    bad = sender.connect()
    bad.send("boom")
    assert read_close(bad)[0] == 1011
    good.send("still here")
    assert good.recv() == "still here"
    good.close()


def test_a_handler_may_close_its_connection(make_listener: Make, sender: Sender) -> None:
    closed: "queue.Queue[int]" = queue.Queue()
    listener = make_listener(open=False)
    listener.on_message = lambda conn, message: conn.close(4000, "bye")
    listener.on_close = lambda conn: closed.put(conn.close_code)
    listener.open(timeout=15)
    ws = sender.connect()
    ws.send("hello")
    assert read_close(ws) == (4000, "bye")
    assert closed.get(timeout=WAIT) == 4000
    assert wait_until(lambda: listener.stats["multiplexed"] == 0, timeout=WAIT)


def test_close_with_multiplexed_sockets_open_stops_the_reader(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_message = echo
    listener.open(timeout=15)
    sockets = [sender.connect() for _ in range(5)]
    for ws in sockets:
        ws.send("x")
        assert ws.recv() == "x"
    assert listener.close(timeout=10)
    for ws in sockets:
        assert read_close(ws)[0] == 1001
        ws.close()


def test_a_burst_of_accepts_past_the_pool_backlog_is_queued_not_refused(make_listener: Make, sender: Sender) -> None:
    # 2 handler threads + 2 queued: one pool task per accept refused the 5th sender at once (503).
    # Multiplexed accepts wait in the DialQueue instead, and every sender is served.
    listener = make_listener(open=False, max_workers=2, max_pending=2)
    listener.on_message = echo
    listener.open(timeout=15)
    count = 40
    barrier = threading.Barrier(count)
    results: "queue.Queue[object]" = queue.Queue()

    def connect_and_echo(n: int) -> None:
        try:
            barrier.wait(WAIT)
            ws = sender.connect()
            ws.send(f"m{n}")
            results.put(ws.recv() == f"m{n}")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.put(exc)

    threads = [threading.Thread(target=connect_and_echo, args=(n,), name=f"test-burst-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    outcomes = [results.get(timeout=WAIT * 2) for _ in range(count)]
    for thread in threads:
        thread.join(WAIT)
    assert outcomes == [True] * count, [o for o in outcomes if o is not True][:3]
    assert listener.stats["busy"] == 0
    assert wait_until(lambda: listener.stats["multiplexed"] == count, timeout=WAIT)
