"""The emulator's CloseWatch: a close another thread sent goes unanswered, and the blocked reader is woken.

Without the watch each reader woke every few seconds to look for such a deadline; with 10,000
pump threads (5,000 relayed WebSockets) those wake-ups alone pinned both cores in the kernel.
"""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Tuple

import pytest

from hybridconn.emulator import ws as ws_module
from hybridconn.emulator.close_watch import CloseWatch
from hybridconn.emulator.ws import CloseAnswered, ConnectionLost, WsChannel
from hybridconn._frames import OP_CLOSE, close_payload, pack_frame

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tuple[WsChannel, socket.socket, CloseWatch]]:
    monkeypatch.setattr(ws_module, "CLOSE_ANSWER_TIMEOUT", 0.3)
    near, far = socket.socketpair()
    watch = CloseWatch(name="hybridconn-test-close-watch")
    channel = WsChannel(near, name="test")
    channel.close_watch = watch
    try:
        yield channel, far, watch
    finally:
        watch.close()
        channel.abort()
        near.close()
        far.close()


def read_in_thread(channel: WsChannel) -> Tuple[threading.Thread, threading.Event, List[object]]:
    events: List[object] = []
    returned = threading.Event()

    def read() -> None:
        events.extend(channel.read_events(None))
        returned.set()

    thread = threading.Thread(target=read, name="test-reader", daemon=True)
    thread.start()
    return thread, returned, events


def test_an_unanswered_close_from_another_thread_wakes_the_blocked_reader(watched) -> None:
    channel, _far, watch = watched
    thread, returned, events = read_in_thread(channel)
    assert channel.send_close(1000, "bye")  # from this thread, not the reader's
    assert returned.wait(20), "the reader was never woken"
    thread.join(5)
    assert len(events) == 1 and isinstance(events[0], ConnectionLost)
    assert "did not answer the close" in events[0].reason
    assert watch.pending == 0


def test_a_watched_reader_does_not_wake_to_poll_for_deadlines(watched) -> None:
    channel, far, watch = watched
    thread, returned, events = read_in_thread(channel)
    # Unwatched, read_events(None) returns [] every CLOSE_ANSWER_TIMEOUT (0.3 s here) to look for a
    # deadline; watched, it stays in poll until something happens.
    assert not returned.wait(1.5)
    far.sendall(pack_frame(OP_CLOSE, close_payload(1000, ""), masked=True))
    assert returned.wait(20)
    thread.join(5)
    assert events and not isinstance(events[-1], ConnectionLost)


def test_an_answered_close_is_forgotten_and_the_thread_ends(watched) -> None:
    channel, far, watch = watched
    assert channel.send_close(1000, "")
    assert watch.pending == 1
    far.sendall(pack_frame(OP_CLOSE, close_payload(1000, ""), masked=True))
    events = channel.read_events(5)
    assert any(isinstance(event, CloseAnswered) for event in events)
    assert watch.pending == 0
    names = lambda: [t.name for t in threading.enumerate()]  # noqa: E731
    for _ in range(200):
        if "hybridconn-test-close-watch" not in names():
            break
        threading.Event().wait(0.05)
    assert "hybridconn-test-close-watch" not in names()


def test_a_closed_watch_refuses_new_deadlines() -> None:
    watch = CloseWatch(name="hybridconn-test-close-watch")
    watch.close()
    near, far = socket.socketpair()
    try:
        channel = WsChannel(near, name="test")
        channel.close_watch = watch
        assert channel.send_close(1000, "")
        assert watch.pending == 0
        assert "hybridconn-test-close-watch" not in [t.name for t in threading.enumerate()]
    finally:
        near.close()
        far.close()
