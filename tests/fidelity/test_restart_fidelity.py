"""The service's periodic restart (1011 NameRenewalFailed, relay-exceptions article): the listener
comes back at once, without backing off, and keeps serving."""

from __future__ import annotations

import time
from typing import Any


from hybridconn.emulator.fidelity import NAME_RENEWAL_FAILED
from hybridconn.exceptions import ConnectionClosed
from tests.support.endpoints import StatusLog, make_listener, ok
from tests.support.plain_clients import Sender

from hybridconn._listener.reconnect import RESTART_MIN_UP


def test_a_restart_is_a_1011_name_renewal_failed_and_the_listener_returns_without_backoff(relay: Any) -> None:
    # The second step is 60 s: only the restart rule can bring the listener back in time twice.
    listener = make_listener(relay, backoff=(0, 60), jitter=0)
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    sender = Sender(relay)
    try:
        assert events.online.acquire(timeout=5)
        for _ in range(2):
            time.sleep(RESTART_MIN_UP + 0.2)  # a channel closed at once would back off (by design)
            events.offline.clear()
            assert relay.restart_control_channels("hc1") == 1
            assert events.offline.wait(15)
            error = events.offline_errors[-1]
            assert isinstance(error, ConnectionClosed)
            assert error.code == 1011
            assert "NameRenewalFailed" in str(error)
            assert events.online.acquire(timeout=15), "the listener backed off after a service restart"
        assert relay.wait_for_listeners("hc1", 1, timeout=15)
        assert sender.request("GET", "/").content == b"ok:"
    finally:
        sender.close()
        listener.close(timeout=10)


def test_the_reason_fits_a_close_frame() -> None:
    assert len((NAME_RENEWAL_FAILED + " TrackingId:" + "0" * 36).encode()) <= 123
