"""The listener's keep-alive against the emulator's readings of the service (azure-relay-dotnet #103,
azure-relay #33): unsolicited Pongs keep a channel alive where a Ping would close it, idle channels
are dropped, and the kernel's options are set for dead-path detection."""

from __future__ import annotations

import socket
import time
from typing import Any, Iterator

import pytest

from hybridconn import HybridConnectionListener
from hybridconn._tcp import detect_dead_path
from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.fidelity import Fidelity
from hybridconn.exceptions import ConnectionClosed
from tests.support.endpoints import StatusLog, make_listener, ok
from tests.support.plain_clients import Sender


@pytest.fixture
def strict() -> Iterator[RelayEmulator]:
    """Closes the control channel on a Ping, drops a channel idle for 1.5 s, pongs every 0.5 s."""
    fidelity = Fidelity(on_ping="close", idle_timeout=1.5, service_pong_interval=0.5)
    with RelayEmulator(hybrid_connections=["hc1"], fidelity=fidelity) as relay:
        yield relay


def _online(relay: RelayEmulator, **options: Any) -> "tuple[HybridConnectionListener, StatusLog]":
    listener = make_listener(relay, **options)
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    return listener, events


def test_default_pongs_keep_the_channel_alive_where_pings_and_silence_do_not(strict: RelayEmulator) -> None:
    listener, events = _online(strict, ping_interval=0.3)
    try:
        # 3 s = two idle timeouts and several keep-alives: a Ping would have closed the channel.
        assert not events.offline.wait(3.0), events.offline_errors
        assert listener.is_online
        sender = Sender(strict)
        try:
            assert sender.request("GET", "/").content == b"ok:"
        finally:
            sender.close()
    finally:
        listener.close(timeout=10)


def test_a_ping_on_a_close_on_ping_relay_loses_the_channel_and_the_listener_comes_back(
        strict: RelayEmulator) -> None:
    listener, events = _online(strict, ping_interval=0.3, keepalive="ping", backoff=(0,))
    try:
        assert events.offline.wait(15), "the emulator did not close the channel on a Ping"
        assert isinstance(events.offline_errors[0], ConnectionClosed)
        assert events.online.acquire(timeout=15)  # reconnects (and is closed again: the reading is pessimistic)
    finally:
        listener.close(timeout=10)


def test_a_silent_listener_is_dropped_after_the_idle_timeout(strict: RelayEmulator) -> None:
    listener, events = _online(strict, ping_interval=60, backoff=(0,))
    try:
        assert events.offline.wait(15), "an idle control channel was not dropped"
        assert events.online.acquire(timeout=15)
    finally:
        listener.close(timeout=10)


def test_ping_mode_survives_a_relay_that_answers_pings() -> None:
    fidelity = Fidelity(on_ping="answer", idle_timeout=1.5)
    with RelayEmulator(hybrid_connections=["hc1"], fidelity=fidelity) as relay:
        listener, events = _online(relay, ping_interval=0.3, ping_timeout=5, keepalive="ping")
        try:
            assert not events.offline.wait(3.0), events.offline_errors
        finally:
            listener.close(timeout=10)


def test_an_unknown_keepalive_mode_is_refused(relay: Any) -> None:
    with pytest.raises(ValueError, match="keepalive"):
        make_listener(relay, keepalive="shout")


def test_dead_path_options_are_set_on_a_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        done = detect_dead_path(sock, interval=30, timeout=10)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            assert "TCP_USER_TIMEOUT" in done
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10000
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    assert detect_dead_path(None, 30, 10) == []


def test_the_listener_sets_them_on_its_control_channel(relay: Any) -> None:
    listener, events = _online(relay, ping_interval=7, ping_timeout=3)
    try:
        link = listener._channel
        assert link is not None
        sock = link.conn._sock
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3000
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    finally:
        listener.close(timeout=10)


def test_the_service_pongs_reach_the_listener_as_liveness(strict: RelayEmulator) -> None:
    listener, events = _online(strict, ping_interval=0.3)
    try:
        link = listener._channel
        assert link is not None
        before = link.conn.last_activity
        deadline = time.monotonic() + 10
        while link.conn.last_activity == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.conn.last_activity > before, "no frame (the service's Pong) arrived"
    finally:
        listener.close(timeout=10)
