"""``Microsoft-Relay-AllowedListeners`` / ``DisallowedListeners`` route a sender among listeners, as
azure-relay-dotnet HybridRequestTests.cs (AllowedListeners, DisallowedListeners) shows: each header is
a comma-separated list of listener ids (a listener's ``sb-hc-id``; ``listener.listener_id`` here), and
404 "None of the connected listeners meet the AllowedListeners/DisallowedListeners criteria" when none
qualifies."""

from __future__ import annotations

import contextlib
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
from tests.support.endpoints import make_client, make_listener

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
            listener.on_request = _named(i)
            listener.on_connection = _ws_named(i)
            stack.enter_context(listener)
            listener.open(timeout=15)
            listeners.append(listener)
        yield listeners


def _ids(listeners: List[HybridConnectionListener]) -> str:
    return ",".join(listener.listener_id for listener in listeners)


def test_every_listener_keeps_one_id_and_ids_differ(three: List[HybridConnectionListener]) -> None:
    assert len({listener.listener_id for listener in three}) == 3


def test_allowed_listeners_route_requests_and_connects_to_the_named_one(
        relay: Any, three: List[HybridConnectionListener]) -> None:
    with make_client(relay) as client:
        for i, listener in enumerate(three):
            for _ in range(4):  # never one of the others (a random pick would be 1 in 3)
                response = client.request("GET", "/", headers={ALLOWED: listener.listener_id}, timeout=15)
                assert response.text == f"listener{i}"
                conn = client.connect(headers={ALLOWED: listener.listener_id.upper()}, timeout=15)
                try:
                    assert conn.recv(timeout=15) == f"listener{i}"
                finally:
                    conn.close(timeout=5)
        two = {f"listener{i}" for i in range(2)}
        for _ in range(6):
            response = client.request("GET", "/", headers={ALLOWED: " , ".join(x.listener_id for x in three[:2])},
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
            response = client.request("GET", "/", headers={DISALLOWED: three[0].listener_id}, timeout=15)
            assert response.text != "listener0"


@pytest.mark.parametrize("headers_for", [
    lambda three: {ALLOWED: "00000000-0000-0000-0000-000000000000"},
    lambda three: {DISALLOWED: _ids(three)},
    lambda three: {ALLOWED: three[0].listener_id, DISALLOWED: three[0].listener_id},
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
        response = client.request("GET", "/", headers={ALLOWED: listener.listener_id}, timeout=15)
        assert response.text == "listener7"
