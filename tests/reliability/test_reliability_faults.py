"""Faults under traffic: control channel kills, relay restarts, half-open channels, short and
expiring tokens, hung handlers. Each test prints its figures (run with ``-s`` to see them)."""

from __future__ import annotations

import random
import threading
import time
from typing import Any, List, Sequence

import pytest

from hybridconn import (
    AuthenticationError, RelayedRequest, RelayedResponse, RelayTimeoutError, StaticTokenProvider,
)
from hybridconn.addresses import token_audience
from hybridconn.auth import ConnectionString, generate_sas_token
from hybridconn.emulator import RelayEmulator
from hybridconn.listener import HybridConnectionListener
from tests.support.endpoints import StatusLog, echo_connection, echo_request, make_client, make_listener
from tests.support.measure import describe_sockets, hybridconn_threads, open_socket_count, wait_until
from tests.support.traffic import PersistentSocket, Traffic


JITTER = 0.2


def _recovery_bound(backoff: Sequence[float]) -> float:
    """Generous: three times the longest (jittered) step, plus handshake time on a loaded box."""
    return 3 * max(backoff) * (1 + JITTER) + 10.0


def _non_pool_threads() -> List[str]:
    # Handler pool threads stay parked up to max_workers, and the listener's one Pong timer for its
    # relayed sockets lives from the first socket to close(); everything else comes and goes with its socket.
    return [n for n in hybridconn_threads()
            if not n.startswith(("hybridconn-handler-", "hybridconn-listener-keepalive-"))]


# ------------------------------------------------------------------------------------------------
# The control channel killed N times


def _kills_under_traffic(kills: int, backoff: Sequence[float], seed: int, record_property: Any) -> None:
    rng = random.Random(seed)
    with RelayEmulator(response_timeout=10) as relay:
        listener = make_listener(relay, backoff=backoff, jitter=JITTER, max_workers=32)
        listener.on_request = echo_request
        listener.on_connection = echo_connection
        status = StatusLog(listener)
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            assert status.online.acquire(timeout=5)
            assert relay.wait_for_listeners("hc1", 1, timeout=10)
            baseline_sockets = open_socket_count()
            baseline = describe_sockets()
            baseline_threads = _non_pool_threads()
            persistent = [PersistentSocket(client, f"p{i}") for i in range(2)]
            traffic = Traffic(client, http_threads=3, ws_threads=2, seed=seed).start()
            recoveries: List[float] = []
            bound = _recovery_bound(backoff)
            for kill in range(kills):
                assert relay.wait_for_listeners("hc1", 1, timeout=bound), f"not back before kill {kill}"
                time.sleep(rng.uniform(0.05, 0.6))  # a random moment in the traffic
                code = rng.choice((None, None, 1011, 1001))
                killed_at = time.monotonic()
                assert relay.drop_control_channels("hc1", code=code) == 1
                assert status.online.acquire(timeout=bound), f"kill {kill} ({code}): not back online in {bound:.0f} s"
                recoveries.append(status.online_at[-1] - killed_at)
            hung = traffic.stop()
            for socket_ in persistent:
                socket_.close()
            assert listener.is_online
            assert listener.stats["connects"] == kills + 1
            assert len(status.offline_errors) == kills
            # every sender operation answered or failed cleanly, none hung
            assert hung == []
            assert traffic.http.bad == [] and traffic.ws.bad == [], (traffic.http.bad[:5], traffic.ws.bad[:5])
            assert traffic.http.ok > 0 and traffic.ws.ok > 0
            # rendezvous sockets are independent of the control channel: the long-lived ones saw every kill
            for socket_ in persistent:
                assert socket_.error is None, repr(socket_.error)
                assert socket_.exchanged > 0
            # nothing leaked while the listener keeps running
            client.close()
            assert wait_until(lambda: open_socket_count() <= baseline_sockets, 15), (
                baseline,
                describe_sockets(),
                _non_pool_threads(),
            )
            assert wait_until(lambda: len(_non_pool_threads()) <= len(baseline_threads), 15), _non_pool_threads()
            figures = (f"kills survived={kills}/{kills} recovery max={max(recoveries):.2f}s "
                       f"mean={sum(recoveries) / len(recoveries):.2f}s (bound {bound:.1f}s); "
                       f"http {traffic.http.summary()}; ws {traffic.ws.summary()}; "
                       f"persistent messages={sum(s.exchanged for s in persistent)}; lost=0")
            print(f"\n[reliability] control channel kills: {figures}")
            record_property("figures", figures)
        finally:
            client.close()
            listener.close(timeout=10)


def test_control_channel_killed_10_times_under_traffic(record_property: Any) -> None:
    _kills_under_traffic(10, backoff=(0, 0.2, 0.5), seed=10, record_property=record_property)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_control_channel_killed_50_times_under_traffic(record_property: Any) -> None:
    _kills_under_traffic(50, backoff=(0, 0.2, 0.5, 1.0), seed=50, record_property=record_property)


# ------------------------------------------------------------------------------------------------
# The relay stopped and started again on the same port


def test_emulator_stopped_and_restarted_3_times_on_the_same_port(record_property: Any) -> None:
    with RelayEmulator(response_timeout=10) as relay:
        port = relay.port
        listener = make_listener(relay, backoff=(0, 0.2, 0.5), jitter=JITTER)
        listener.on_request = echo_request
        listener.on_connection = echo_connection
        status = StatusLog(listener)
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            assert status.online.acquire(timeout=5)
            traffic = Traffic(client, http_threads=2, ws_threads=1, seed=3).start()
            recoveries = []
            for restart in range(3):
                assert relay.wait_for_listeners("hc1", 1, timeout=15)
                status.offline.clear()
                relay.stop()
                assert status.offline.wait(15), "the listener did not notice the relay going away"
                assert not listener.is_online
                time.sleep(0.7)  # the listener's reconnects hit a closed port meanwhile
                started = time.monotonic()
                relay.start()
                assert relay.port == port
                assert status.online.acquire(timeout=20), f"restart {restart}: listener did not come back"
                recoveries.append(time.monotonic() - started)
                assert client.request("POST", "/after", data=b"x", timeout=(10, 30)).content == b"/after|x"
                # the background senders recover by themselves too
                before = (traffic.http.ok, traffic.ws.ok)
                assert wait_until(
                    lambda before=before: traffic.http.ok >= before[0] + 5 and traffic.ws.ok > before[1], 20
                )
            hung = traffic.stop()
            assert hung == [] and traffic.http.bad == [] and traffic.ws.bad == [], (
                traffic.http.bad[:3],
                traffic.ws.bad[:3],
            )
            figures = (f"restarts survived=3/3 back online max={max(recoveries):.2f}s after start; "
                       f"http {traffic.http.summary()}; ws {traffic.ws.summary()}")
            print(f"\n[reliability] emulator restarts: {figures}")
            record_property("figures", figures)
        finally:
            client.close()
            listener.close(timeout=10)


# ------------------------------------------------------------------------------------------------
# A silent half-open control channel


def test_half_open_control_channel_detected_3_times(record_property: Any) -> None:
    ping_interval, ping_timeout = 0.5, 1.0
    with RelayEmulator(response_timeout=10) as relay:
        # keepalive="ping": the emulator's kernel still ACKs a stalled channel, so only an unanswered
        # Ping finds it (a dead network path is tests/netpath's, found by TCP_USER_TIMEOUT in either mode).
        listener = make_listener(relay, backoff=(0, 0.2), jitter=JITTER, ping_interval=ping_interval,
                                 ping_timeout=ping_timeout, keepalive="ping")
        listener.on_request = echo_request
        status = StatusLog(listener)
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            assert status.online.acquire(timeout=5)
            detections = []
            bound = 3 * (ping_interval + ping_timeout) + 5
            for round_ in range(3):
                assert relay.wait_for_listeners("hc1", 1, timeout=15)
                [live] = relay.listener_ids("hc1")  # earlier stalled channels are still there, silent
                status.offline.clear()
                stalled_at = time.monotonic()
                assert relay.stall_control_channels("hc1", live) == 1
                assert status.offline.wait(bound), f"round {round_}: half-open channel not detected in {bound} s"
                detections.append(time.monotonic() - stalled_at)
                assert isinstance(status.offline_errors[-1], RelayTimeoutError)
                assert status.online.acquire(timeout=15)
                assert client.request("POST", "/ok", data=b"y", timeout=(10, 30)).content == b"/ok|y"
            relay.drop_control_channels("hc1")  # release the emulator's ends of the stalled channels
            figures = (f"half-open channels detected=3/3 max={max(detections):.2f}s "
                       f"(ping_interval+ping_timeout={ping_interval + ping_timeout:g}s)")
            print(f"\n[reliability] half-open: {figures}")
            record_property("figures", figures)
        finally:
            client.close()
            listener.close(timeout=10)


# ------------------------------------------------------------------------------------------------
# Tokens


def _short_tokens_under_traffic(seconds: float, record_property: Any) -> None:
    with RelayEmulator(response_timeout=10) as relay:
        listener = make_listener(relay, token_ttl=5, max_workers=16)
        listener.on_request = echo_request
        listener.on_connection = echo_connection
        status = StatusLog(listener)
        client = make_client(relay, token_ttl=5)  # the sender's tokens are short too
        try:
            listener.open(timeout=15)
            traffic = Traffic(client, http_threads=2, ws_threads=1, seed=5).start()
            time.sleep(seconds)  # the soak itself: traffic runs while tokens expire and are renewed
            hung = traffic.stop()
            assert listener.stats["renewals"] >= int(seconds / 5), listener.stats
            assert hung == []
            assert traffic.http.bad == [] and traffic.ws.bad == [], (traffic.http.bad[:3], traffic.ws.bad[:3])
            # zero drops: not even a clean failure
            assert traffic.http.clean == {} and traffic.ws.clean == {}, (traffic.http.clean, traffic.ws.clean)
            assert status.offline_errors == []
            assert listener.stats["connects"] == 1 and listener.is_online
            figures = (f"token ttl 5s for {seconds:g}s: renewals={listener.stats['renewals']} drops=0; "
                       f"http {traffic.http.summary()}; ws {traffic.ws.summary()}")
            print(f"\n[reliability] short tokens: {figures}")
            record_property("figures", figures)
        finally:
            client.close()
            listener.close(timeout=10)


def test_token_ttl_5s_for_15s_under_traffic_zero_drops(record_property: Any) -> None:
    _short_tokens_under_traffic(15, record_property)


@pytest.mark.stress
@pytest.mark.timeout(300)
def test_token_ttl_5s_for_60s_under_traffic_zero_drops(record_property: Any) -> None:
    _short_tokens_under_traffic(60, record_property)


def test_static_token_that_expires_is_1008_and_authentication_error() -> None:
    with RelayEmulator() as relay:
        cs = ConnectionString.parse(relay.connection_string("hc1"))
        token = generate_sas_token(token_audience(cs.namespace, "hc1"), cs.shared_access_key_name or "",
                                   cs.shared_access_key or "", ttl=3)
        listener = HybridConnectionListener(cs.namespace, "hc1", StaticTokenProvider(token), backoff=(0.3,))
        listener.on_request = echo_request
        status = StatusLog(listener)
        try:
            listener.open(timeout=10)
            assert status.offline.wait(20), "the relay did not close the channel when the token expired"
            first = status.offline_errors[0]
            assert isinstance(first, AuthenticationError) and "1008" in str(first)
            # reconnecting with the same (expired) token is refused: still an authentication error
            assert wait_until(lambda: listener.stats["connects"] == 1 and not listener.is_online, 5)
            assert isinstance(listener.last_error, AuthenticationError)
            assert listener.state == "offline"
        finally:
            listener.close(timeout=5)
        assert listener.state == "closed"


# ------------------------------------------------------------------------------------------------
# A handler that hangs


def test_hung_handlers_get_504_without_starving_others_and_close_returns(record_property: Any) -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def handler(req: RelayedRequest) -> RelayedResponse:
        if req.path.startswith("/hang"):
            entered.release()
            release.wait(60)
        return RelayedResponse(body=b"done " + req.path.encode())

    with RelayEmulator(response_timeout=2) as relay:
        listener = make_listener(relay, max_workers=3, max_pending=1)
        listener.on_request = handler
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            # 1. two hung handlers: their senders get the relay's 504, as a typed error, in time
            for n in range(2):
                started = time.monotonic()
                with pytest.raises(RelayTimeoutError) as info:
                    client.request("GET", f"/hang{n}", timeout=(10, 30))
                assert "504" in str(info.value) or "did not respond" in str(info.value)
                assert time.monotonic() - started < 2 * 3 + 10
                assert entered.acquire(timeout=5)
            # 2. the third worker still serves everybody else
            for n in range(5):
                assert client.request("GET", f"/fast{n}", timeout=(10, 30)).content == f"done /fast{n}".encode()
            # 3. fill the last worker and the one pending slot; the next request is 503 at once
            third = threading.Thread(target=lambda: _quietly(client.request, "GET", "/hang2", timeout=(10, 30)))
            third.start()
            assert entered.acquire(timeout=10)
            queued = threading.Thread(target=lambda: _quietly(client.request, "GET", "/queued", timeout=(10, 30)))
            queued.start()
            assert wait_until(lambda: listener.stats["in_flight"] == 4, 10), listener.stats
            busy = client.request("GET", "/overflow", timeout=(10, 30))
            assert busy.status_code == 503 and "Via" in busy.headers  # the listener's answer, not the relay's
            third.join(30)
            queued.join(30)
            # 4. close() returns within its timeout although three handlers still hang
            started = time.monotonic()
            listener.close(timeout=3)
            elapsed = time.monotonic() - started
            assert elapsed < 3 * 3, elapsed
            assert listener.state == "closed"
            figures = (
                "hung handlers=3 -> 504 each; others served=5; overflow -> 503; "
                f"close() took {elapsed:.2f}s (timeout 3s)"
            )
            print(f"\n[reliability] hung handlers: {figures}")
            record_property("figures", figures)
        finally:
            release.set()
            client.close()
            listener.close(timeout=5)
        # the hung handlers finish once released; nothing stays behind
        assert wait_until(lambda: not [n for n in hybridconn_threads() if "-hc1" in n], 10), hybridconn_threads()


def _quietly(func: Any, *args: Any, **kwargs: Any) -> None:
    try:
        func(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the outcome is checked elsewhere
        pass
