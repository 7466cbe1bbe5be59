"""``Microsoft-Relay-AllowedListeners`` / ``DisallowedListeners`` route a sender among listeners, as
azure-relay-dotnet HybridRequestTests.cs (AllowedListeners, DisallowedListeners) shows: each header is
a comma-separated list of listener ids (a listener's ``sb-hc-id``: ``listener.listener_id``, set), and
404 "None of the connected listeners meet the AllowedListeners/DisallowedListeners criteria" when none
qualifies."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Iterator, List

import pytest

from hybridconn import (
    HybridConnection,
    HybridConnectionListener,
    ListenerUnavailableError,
    NoListenerConnectedError,
    RelayedRequest,
    RelayedResponse,
)
from tests.support.endpoints import StatusLog, make_client, make_listener

ALLOWED = "Microsoft-Relay-AllowedListeners"
DISALLOWED = "Microsoft-Relay-DisallowedListeners"


def _named(index: int) -> Any:
    def handler(request: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=f"listener{index}".encode())

    return handler


def _ws_named(index: int) -> Any:
    def handler(conn: HybridConnection) -> None:
        conn.send(f"listener{index}")

    return handler


@pytest.fixture
def three(relay: Any) -> Iterator[List[HybridConnectionListener]]:
    listeners = []
    with contextlib.ExitStack() as stack:
        for i in range(3):
            listener = make_listener(relay)
            listener.listener_id = str(uuid.uuid4())
            listener.on_request = _named(i)
            listener.on_connection = _ws_named(i)
            stack.enter_context(listener)
            listener.open(timeout=15)
            listeners.append(listener)
        yield listeners


def _ids(listeners: List[HybridConnectionListener]) -> str:
    return ",".join(_id(listener) for listener in listeners)


def _id(listener: HybridConnectionListener) -> str:
    assert listener.listener_id is not None
    return listener.listener_id


def test_a_listener_id_is_kept_across_reconnects_and_fresh_ids_without_one(relay: Any) -> None:
    named, unnamed = make_listener(relay, backoff=(0,)), make_listener(relay, backoff=(0,))
    named.listener_id = "4f56f839-4267-4e78-99b4-06a83b18c8b4"
    for listener in (named, unnamed):
        listener.on_request = _named(0)
    events = StatusLog(named)
    with named:
        named.open(timeout=15)
        assert events.online.acquire(timeout=5)
        first = relay.listener_ids("hc1")
        relay.drop_control_channels("hc1")
        assert events.online.acquire(timeout=15)
        assert relay.wait_for_listeners("hc1", 1, timeout=15)
        assert relay.listener_ids("hc1") == first
        with make_client(relay) as client:  # back online, under the same id
            response = client.request("GET", "/", headers={ALLOWED: named.listener_id}, timeout=15)
            assert response.text == "listener0"
        assert first == [named.listener_id]
    assert unnamed.listener_id is None  # the default: a fresh sb-hc-id per control channel
    unnamed.close(timeout=5)


def test_allowed_listeners_route_requests_and_connects_to_the_named_one(
        relay: Any, three: List[HybridConnectionListener]) -> None:
    with make_client(relay) as client:
        for i, listener in enumerate(three):
            for _ in range(4):  # never one of the others (a random pick would be 1 in 3)
                response = client.request("GET", "/", headers={ALLOWED: _id(listener)}, timeout=15)
                assert response.text == f"listener{i}"
                conn = client.connect(headers={ALLOWED: _id(listener).upper()}, timeout=15)
                try:
                    assert conn.recv(timeout=15) == f"listener{i}"
                finally:
                    conn.close(timeout=5)
        two = {f"listener{i}" for i in range(2)}
        for _ in range(6):
            response = client.request("GET", "/", headers={ALLOWED: " , ".join(_id(x) for x in three[:2])},
                                      timeout=15)
            assert response.text in two


def test_disallowed_listeners_keep_a_request_away(relay: Any, three: List[HybridConnectionListener]) -> None:
    with make_client(relay) as client:
        for i, listener in enumerate(three):
            others = [other for other in three if other is not listener]
            for _ in range(3):
                response = client.request("GET", "/", headers={DISALLOWED: _ids(others)}, timeout=15)
                assert response.text == f"listener{i}"
        for _ in range(6):
            response = client.request("GET", "/", headers={DISALLOWED: _id(three[0])}, timeout=15)
            assert response.text != "listener0"


@pytest.mark.parametrize("headers_for", [
    lambda three: {ALLOWED: "00000000-0000-0000-0000-000000000000"},
    lambda three: {DISALLOWED: _ids(three)},
    lambda three: {ALLOWED: _id(three[0]), DISALLOWED: _id(three[0])},
], ids=["unknown-allowed", "all-disallowed", "allowed-and-disallowed"])
def test_no_qualifying_listener_is_404_with_the_service_text(
        relay: Any, three: List[HybridConnectionListener], headers_for: Any) -> None:
    headers = headers_for(three)
    with make_client(relay) as client:
        with pytest.raises(NoListenerConnectedError) as http_error:
            client.request("GET", "/", headers=headers, timeout=15)
        with pytest.raises(NoListenerConnectedError) as ws_error:
            client.connect(headers=headers, timeout=15)
    for error in (http_error.value, ws_error.value):
        assert error.status_code == 404
        assert "None of the connected listeners meet the AllowedListeners/DisallowedListeners criteria" in error.reason
        assert isinstance(error, ListenerUnavailableError)


def test_a_chosen_listener_id_is_used(relay: Any) -> None:
    listener = make_listener(relay)
    listener.listener_id = "4f56f839-4267-4e78-99b4-06a83b18c8b4"
    listener.on_request = _named(7)
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        response = client.request("GET", "/", headers={ALLOWED: _id(listener)}, timeout=15)
        assert response.text == "listener7"
