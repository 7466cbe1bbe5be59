"""Listener lifecycle through the emulator: open errors, renewal, reconnects, half-open detection, close."""

from __future__ import annotations

import _thread
import threading
import time
from typing import Any, Callable, List

import pytest

from hybridconn import AuthenticationError, EndpointNotFoundError, RelayedRequest, RelayedResponse, RelayTimeoutError
from hybridconn.auth import SharedAccessKeyTokenProvider
from hybridconn.listener import HybridConnectionListener
from tests.support.endpoints import StatusLog, emulator_options, ok
from tests.support.plain_clients import Sender


Make = Callable[..., HybridConnectionListener]


def test_threads_are_named_and_gone_after_close(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_request = ok
    listener.open(timeout=15)
    assert sender.request("GET", "/").content == b"ok:"
    names = {t.name for t in threading.enumerate()}
    assert "hybridconn-listener-hc1" in names
    assert "hybridconn-keepalive-hc1" in names
    assert any(n.startswith("hybridconn-handler-hc1_") for n in names)
    listener.close(timeout=5)
    listener.close(timeout=5)  # idempotent
    assert listener.state == "closed" and not listener.is_online
    assert not [t for t in threading.enumerate() if t.name.endswith("-hc1") or "-hc1_" in t.name]


def test_context_manager_opens_and_closes(relay: Any, sender: Sender) -> None:
    with HybridConnectionListener.from_connection_string(relay.connection_string("hc1")) as listener:
        listener.on_request = ok
        assert listener.is_online
        assert sender.request("POST", "/", data=b"x").content == b"ok:x"
    assert listener.state == "closed"


def test_unknown_path_raises_endpoint_not_found(relay: Any) -> None:
    cs = relay.connection_string("hc1")
    from hybridconn.auth import ConnectionString

    parsed = ConnectionString.parse(cs)
    listener = HybridConnectionListener(parsed.namespace, "no-such-hc", parsed.token_provider())
    with pytest.raises(EndpointNotFoundError):
        listener.open(timeout=10)
    listener.close()


def test_unknown_path_with_retry_on_open_still_raises(relay: Any) -> None:
    from hybridconn.auth import ConnectionString

    parsed = ConnectionString.parse(relay.connection_string("hc1"))
    listener = HybridConnectionListener(parsed.namespace, "no-such-hc", parsed.token_provider(), retry_on_open=True)
    with pytest.raises(EndpointNotFoundError):
        listener.open(timeout=10)
    assert listener.state == "closed"
    listener.close()


def test_wrong_key_raises_authentication_error_at_open(relay: Any) -> None:
    from hybridconn.auth import ConnectionString

    parsed = ConnectionString.parse(relay.connection_string("hc1"))
    bad = SharedAccessKeyTokenProvider(parsed.shared_access_key_name or "x", "WRONGKEY")
    listener = HybridConnectionListener(parsed.namespace, "hc1", bad)
    with pytest.raises(AuthenticationError) as info:
        listener.open(timeout=10)
    assert "WRONGKEY" not in str(info.value)
    listener.close()


def test_wrong_key_with_retry_on_open_keeps_trying_and_reports(relay: Any) -> None:
    from hybridconn.auth import ConnectionString

    parsed = ConnectionString.parse(relay.connection_string("hc1"))
    bad = SharedAccessKeyTokenProvider(parsed.shared_access_key_name or "x", "WRONGKEY")
    listener = HybridConnectionListener(parsed.namespace, "hc1", bad, retry_on_open=True, backoff=(0.1,))
    listener.open(timeout=1.0)
    assert not listener.is_online
    assert isinstance(listener.last_error, AuthenticationError)
    listener.close(timeout=5)


# A scheduled service restart is a drop by design (tests/fidelity): none during this one.
@pytest.mark.parametrize("relay_emulator_options", [emulator_options("hc1", "hc2", restart_interval=None)])
def test_short_token_ttl_is_renewed_without_a_drop(make_listener: Make, sender: Sender) -> None:
    _renewal_under_traffic(make_listener, sender, seconds=12)


@pytest.mark.stress
def test_short_token_ttl_is_renewed_without_a_drop_for_30_seconds(make_listener: Make, sender: Sender) -> None:
    _renewal_under_traffic(make_listener, sender, seconds=30)


def _renewal_under_traffic(make_listener: Make, sender: Sender, seconds: float) -> None:
    listener = make_listener(open=False, token_ttl=5)
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        r = sender.request("POST", f"/t/{count}", data=str(count).encode())
        assert r.status_code == 200, (count, r.status_code, r.text)
        assert r.content == f"ok:{count}".encode()
        count += 1
    assert events.offline_errors == []
    assert listener.stats["connects"] == 1
    assert listener.stats["renewals"] >= int(seconds / 5)
    assert listener.is_online


def test_dropped_control_channel_comes_back_and_serves(relay: Any, make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0, 0.5))
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    relay.drop_control_channels("hc1")
    assert events.offline.wait(15)
    assert events.online.acquire(timeout=15)
    assert relay.wait_for_listeners("hc1", 1, timeout=10)
    assert sender.request("GET", "/after").content == b"ok:"
    assert listener.stats["connects"] == 2


def test_close_1008_is_reported_as_authentication_error(relay: Any, make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0, 0.5))
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    relay.drop_control_channels("hc1", code=1008)
    assert events.offline.wait(15)
    assert isinstance(events.offline_errors[0], AuthenticationError)
    assert isinstance(listener.last_error, AuthenticationError)
    assert events.online.acquire(timeout=5)  # the first open
    assert events.online.acquire(timeout=15)  # and back
    assert sender.request("GET", "/").status_code == 200


def test_refused_listener_retries_with_backoff_until_accepted(relay: Any, make_listener: Make,
                                                              sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0, 0.3))
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    relay.refuse_listeners("hc1", 2.0)
    relay.drop_control_channels("hc1")
    assert events.offline.wait(15)
    assert events.online.acquire(timeout=5)
    assert events.online.acquire(timeout=20)
    assert events.connecting >= 3  # open, then refused attempts, then the one that worked
    assert sender.request("GET", "/").status_code == 200


# Pings need a relay that answers them (the pessimistic profile's would close the channel).
@pytest.mark.parametrize("relay_emulator_options", [emulator_options("hc1", "hc2", on_ping="answer")])
def test_half_open_channel_is_detected_and_replaced(relay: Any, make_listener: Make, sender: Sender) -> None:
    # An application-level stall (the emulator's kernel still ACKs) is found only by Pings that go
    # unanswered; the default Pongs rely on TCP_USER_TIMEOUT, which needs a dead path (tests/netpath).
    listener = make_listener(open=False, ping_interval=0.5, ping_timeout=0.5, backoff=(0,), keepalive="ping")
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    relay.stall_control_channels("hc1")
    assert events.offline.wait(15)
    assert isinstance(events.offline_errors[0], RelayTimeoutError)
    assert events.online.acquire(timeout=15)
    assert relay.wait_for_listeners("hc1", 1, timeout=15)
    assert sender.request("GET", "/").content == b"ok:"


def test_emulator_restart_is_survived(relay: Any, make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0, 0.3))
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    relay.restart()
    assert events.offline.wait(15)
    assert events.online.acquire(timeout=20)
    assert sender.request("GET", "/").content == b"ok:"


def test_callback_exceptions_never_break_the_listener(relay: Any, make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0,))
    listener.on_request = ok
    calls: List[str] = []
    onlines = threading.Semaphore(0)

    def bad_online() -> None:
        calls.append("online")
        onlines.release()
        raise RuntimeError("callback bug")

    listener.on_online = bad_online
    listener.on_offline = lambda error: (calls.append("offline"), 1 / 0)
    listener.on_connecting = lambda: (calls.append("connecting"), [][1])  # noqa: PLE0643 - raises on purpose
    listener.open(timeout=15)
    relay.drop_control_channels("hc1")
    assert relay.wait_for_listeners("hc1", 1, timeout=15)
    assert onlines.acquire(timeout=5) and onlines.acquire(timeout=15)
    assert calls.count("online") == 2 and "offline" in calls and "connecting" in calls
    assert sender.request("GET", "/").status_code == 200


def test_close_lets_running_handlers_finish(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    entered = threading.Event()

    @listener.on_request
    def slow(req: RelayedRequest) -> RelayedResponse:
        entered.set()
        time.sleep(1.0)
        return RelayedResponse(body=b"finished")

    listener.open(timeout=15)
    results: List[Any] = []
    client = threading.Thread(target=lambda: results.append(sender.request("GET", "/slow")))
    client.start()
    assert entered.wait(15)
    listener.close(timeout=10)
    client.join(30)
    assert results[0].status_code == 200 and results[0].content == b"finished"


def test_close_with_stuck_handlers_returns_within_its_timeout(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_workers=4)
    release = threading.Event()
    entered = threading.Semaphore(0)

    @listener.on_request
    def stuck(req: RelayedRequest) -> RelayedResponse:
        entered.release()
        release.wait(30)
        return RelayedResponse(body=b"late")

    listener.open(timeout=15)
    clients = [threading.Thread(target=sender.request, args=("GET", f"/{n}")) for n in range(4)]
    for c in clients:
        c.start()
    for _ in clients:
        assert entered.acquire(timeout=15)
    started = time.monotonic()
    listener.close(timeout=2)
    elapsed = time.monotonic() - started
    release.set()
    for c in clients:
        c.join(30)
    assert elapsed < 8, elapsed  # bounded (2 s asked; generous for a loaded machine)
    assert listener.state == "closed"


def test_close_from_a_handler_does_not_deadlock(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    closed = threading.Event()

    @listener.on_request
    def closer(req: RelayedRequest) -> RelayedResponse:
        listener.close(timeout=5)
        closed.set()
        return RelayedResponse(body=b"bye")

    listener.open(timeout=15)
    sender.request("GET", "/close")  # the answer may not make it: the channel closed under it
    assert closed.wait(15)
    assert listener.state == "closed"


def test_serve_forever_returns_on_close_and_on_ctrl_c(relay: Any, make_listener: Make) -> None:
    listener = make_listener(open=False)
    timer = threading.Timer(0.5, listener.close)
    timer.start()
    listener.serve_forever()
    timer.join()
    assert listener.state == "closed"

    second = make_listener(open=False)
    interrupter = threading.Timer(0.5, _thread.interrupt_main)
    interrupter.start()
    second.serve_forever()  # KeyboardInterrupt is caught and closes cleanly
    interrupter.join()
    assert second.state == "closed"


def test_close_returns_in_time_when_the_relay_hangs(relay: Any, make_listener: Make, sender: Sender) -> None:
    # a long ping timeout: the keepalive must not replace the channel before close() meets the silence
    listener = make_listener(open=False, ping_interval=0.2, ping_timeout=30)
    listener.on_request = ok
    listener.open(timeout=15)
    assert relay.stall_control_channels("hc1") == 1
    # The emulator's channel goes silent once it reads its next frame; the pings provide that frame.
    time.sleep(1.0)
    started = time.monotonic()
    listener.close(timeout=3)
    elapsed = time.monotonic() - started
    assert listener.state == "closed"
    assert elapsed < 10, elapsed  # bounded by its timeout (generous margin for a loaded machine)
    relay.drop_control_channels("hc1")  # release the emulator's side of the stalled channel


def test_renewal_blocked_by_a_stuck_write_declares_the_channel_dead(make_listener: Make) -> None:
    listener = make_listener(open=False, token_ttl=4, ping_interval=60, ping_timeout=1)
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    channel = listener._channel
    assert channel is not None
    stuck = channel.conn._send_lock  # a handler's write that the relay never drains holds this
    stuck.acquire()
    try:
        assert events.offline.wait(15), "the renewal waited on the send lock forever"
        assert isinstance(events.offline_errors[0], RelayTimeoutError)
        assert "renewed token" in str(events.offline_errors[0])
    finally:
        stuck.release()
    assert events.online.acquire(timeout=15)  # a new channel; the timer thread is still alive
    assert listener.is_online
