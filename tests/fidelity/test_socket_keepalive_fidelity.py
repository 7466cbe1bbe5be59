"""Every long-lived relayed WebSocket survives the service's idle drop (azure-relay #33): the listener
keeps its accepted sockets (``on_connection`` and multiplexed ``on_message``) alive with unsolicited
Pongs every ``ping_interval``, a sender with ``client.connect(keepalive=...)``; one timer thread each."""

from __future__ import annotations

import threading
from typing import Iterator, Union

import pytest

from hybridconn import ConnectionClosed, HybridConnection, HybridConnectionError
from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.fidelity import Fidelity
from tests.support.endpoints import make_client, make_listener

IDLE = 1.5  # the emulator's idle drop, shortened; the keep-alives below come every 0.3 s
KEEPALIVE = 0.3


@pytest.fixture
def idle_relay() -> Iterator[RelayEmulator]:
    with RelayEmulator(hybrid_connections=["hc1"], fidelity=Fidelity(idle_timeout=IDLE)) as relay:
        yield relay


class _Echo:
    """A listener-side handler that echoes, and records when its socket is lost."""

    def __init__(self) -> None:
        self.lost = threading.Event()

    def on_connection(self, conn: HybridConnection) -> None:
        try:
            while True:
                conn.send(conn.recv())
        except HybridConnectionError:
            self.lost.set()

    def on_message(self, conn: HybridConnection, message: Union[str, bytes]) -> None:
        conn.send(message)

    def on_close(self, conn: HybridConnection, *args: object) -> None:
        self.lost.set()


@pytest.mark.parametrize("mode", ["on_connection", "on_message"])
def test_idle_sockets_with_keepalive_survive_three_idle_timeouts_and_still_echo(
        idle_relay: RelayEmulator, mode: str) -> None:
    echo = _Echo()
    listener = make_listener(idle_relay, ping_interval=KEEPALIVE)
    if mode == "on_connection":
        listener.on_connection = echo.on_connection
    else:
        listener.on_message = echo.on_message
        listener.on_close = echo.on_close
    with listener, make_client(idle_relay) as client:
        listener.open(timeout=15)
        conn = client.connect(timeout=15, keepalive=KEEPALIVE)
        try:
            conn.send("before")
            assert conn.recv(timeout=15) == "before"
            # Idle (no data either way) for three idle timeouts: only the keep-alive Pongs flow.
            assert not echo.lost.wait(3 * IDLE), "the listener's idle socket was dropped"
            conn.send("after")
            assert conn.recv(timeout=15) == "after"
        finally:
            conn.close(timeout=5)
        names = {t.name for t in threading.enumerate()}
        assert any(n.startswith("hybridconn-client-keepalive-") for n in names)
        assert any(n.startswith("hybridconn-listener-keepalive-") for n in names)
    names = {t.name for t in threading.enumerate()}
    assert not any("keepalive-" in n and n.startswith(("hybridconn-client", "hybridconn-listener")) for n in names)


def test_a_sender_without_keepalive_is_dropped_when_idle(idle_relay: RelayEmulator) -> None:
    """The control: the emulator does drop an idle sender socket (so the test above means something)."""
    echo = _Echo()
    listener = make_listener(idle_relay, ping_interval=KEEPALIVE)
    listener.on_connection = echo.on_connection
    with listener, make_client(idle_relay) as client:
        listener.open(timeout=15)
        conn = client.connect(timeout=15)
        try:
            with pytest.raises(ConnectionClosed):
                conn.recv(timeout=15)  # nothing comes; the relay drops the idle sender side
            assert echo.lost.wait(15)  # and the listener's side with it
        finally:
            conn.close(timeout=5)


def test_one_timer_thread_serves_many_connections(idle_relay: RelayEmulator) -> None:
    echo = _Echo()
    listener = make_listener(idle_relay, ping_interval=KEEPALIVE)
    listener.on_connection = echo.on_connection
    with listener, make_client(idle_relay) as client:
        listener.open(timeout=15)
        conns = [client.connect(timeout=15, keepalive=KEEPALIVE) for _ in range(5)]
        try:
            names = [t.name for t in threading.enumerate()]
            assert sum(n.startswith("hybridconn-client-keepalive-") for n in names) == 1
            assert sum(n.startswith("hybridconn-listener-keepalive-") for n in names) == 1
            assert not echo.lost.wait(2 * IDLE)
            for i, conn in enumerate(conns):
                conn.send(f"m{i}")
                assert conn.recv(timeout=15) == f"m{i}"
        finally:
            for conn in conns:
                conn.close(timeout=5)


def test_keepalive_must_not_be_negative(idle_relay: RelayEmulator) -> None:
    with make_client(idle_relay) as client, pytest.raises(ValueError):
        client.connect(timeout=15, keepalive=-1)
