"""Under the pessimistic profile (close on Ping, idle drop after 8 s, a 1011 restart every 6 s) a
listener with the default keep-alive stays useful: it comes back after every restart, its idle
channel is never dropped, and senders see either an answer or ListenerUnavailableError."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from hybridconn import EndpointNotFoundError, HybridConnection, ListenerUnavailableError
from hybridconn.emulator.fidelity import PROFILES
from tests.support.endpoints import StatusLog, echo_connection, make_client, make_listener, ok


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "fidelity": "pessimistic"}


@pytest.mark.timeout(120)
def test_requests_through_restarts_get_an_answer_or_listener_unavailable(relay: Any) -> None:
    restart = PROFILES["pessimistic"].restart_interval
    assert restart is not None
    listener = make_listener(relay, backoff=(0, 1))
    listener.on_request = ok
    events = StatusLog(listener)
    outcomes: List[str] = []
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        assert events.online.acquire(timeout=5)
        for _ in range(2):  # two service restarts: online again after each
            assert events.online.acquire(timeout=restart * 4), "the listener did not come back after a restart"
            for _ in range(5):
                try:
                    outcomes.append(client.request("GET", "/", timeout=15).text)
                except ListenerUnavailableError:
                    outcomes.append("unavailable")
    assert all(o in ("ok:", "unavailable") for o in outcomes), outcomes
    assert outcomes.count("ok:") >= 2, outcomes
    assert any("NameRenewalFailed" in str(e) for e in events.offline_errors), events.offline_errors


@pytest.mark.timeout(120)
def test_a_relayed_websocket_works_between_restarts(relay: Any) -> None:
    listener = make_listener(relay, backoff=(0, 1))
    listener.on_connection = echo_connection
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        assert relay.wait_for_listeners("hc1", 1, timeout=30)
        for _attempt in range(10):
            try:
                conn: HybridConnection = client.connect(timeout=15)
            except (ListenerUnavailableError, EndpointNotFoundError):  # 404 for a connect with no listener
                assert relay.wait_for_listeners("hc1", 1, timeout=30)
                continue
            with conn:
                conn.send("hello")
                assert conn.recv(timeout=15) == "hello"
            break
        else:
            pytest.fail("no connect succeeded in 10 attempts")
