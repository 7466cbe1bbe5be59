"""Hybrid connection names in another case: unknown on the service's data plane (Azure resource names are
case-insensitive), so the emulator does both (``Fidelity(case_sensitive_names=...)``, default not), and
routing and token audiences always agree: a name that routes is a name a token may be signed for."""

from __future__ import annotations

from typing import Any, Dict

import pytest
import requests

from hybridconn import (
    EndpointNotFoundError,
    HybridConnection,
    HybridConnectionClient,
    HybridConnectionListener,
    ListenerUnavailableError,
    RelayedRequest,
    RelayedResponse,
)
from hybridconn.emulator.fidelity import Fidelity
from tests.support.endpoints import keepalive_for, make_listener


def _options(case_sensitive: bool) -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "fidelity": Fidelity(case_sensitive_names=case_sensitive)}


def _spelled(relay: Any, spelled: str) -> str:
    """hc1's connection string naming it ``spelled`` (``relay.connection_string`` would create that one)."""
    return relay.connection_string("hc1").replace("EntityPath=hc1", f"EntityPath={spelled}")


def _client(relay: Any, spelled: str) -> HybridConnectionClient:
    return HybridConnectionClient.from_connection_string(_spelled(relay, spelled))


def _listener(relay: Any, spelled: str) -> HybridConnectionListener:
    return HybridConnectionListener.from_connection_string(_spelled(relay, spelled), ping_interval=keepalive_for(relay))


def _serve(conn: HybridConnection) -> None:
    conn.send("hello " + conn.path)


def _answer(request: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(body=b"ok " + request.path.encode())


@pytest.mark.parametrize("relay_emulator_options", [_options(False)], ids=["insensitive"])
def test_any_case_reaches_the_hybrid_connection_when_names_are_case_insensitive(relay: Any) -> None:
    listener = _listener(relay, "Hc1")  # the listener too may spell it another way
    listener.on_request = _answer
    listener.on_connection = _serve
    with listener, _client(relay, "HC1") as client:
        listener.open(timeout=15)
        assert client.request("GET", "/A/b", timeout=15).content == b"ok /A/b"  # the suffix keeps its case
        conn = client.connect("/Chat", timeout=15)
        try:
            assert conn.recv(timeout=15) == "hello /Chat"
        finally:
            conn.close(timeout=5)


@pytest.mark.parametrize("relay_emulator_options", [_options(True)], ids=["sensitive"])
def test_another_case_is_no_such_hybrid_connection_when_names_are_case_sensitive(relay: Any) -> None:
    listener = make_listener(relay)
    listener.on_request = _answer
    with listener, _client(relay, "HC1") as client:
        listener.open(timeout=15)
        for call in (lambda: client.request("GET", "/", timeout=15), lambda: client.connect(timeout=15)):
            with pytest.raises(EndpointNotFoundError) as error:
                call()
            assert not isinstance(error.value, ListenerUnavailableError)
        with _client(relay, "hc1") as exact:
            assert exact.request("GET", "/", timeout=15).content == b"ok /"
    other = _listener(relay, "HC1")
    try:
        with pytest.raises(EndpointNotFoundError):
            other.open(timeout=15)
    finally:
        other.close(timeout=10)


@pytest.mark.parametrize("relay_emulator_options", [_options(False), _options(True)], ids=["insensitive", "sensitive"])
def test_a_token_signed_for_another_case_works_exactly_when_that_case_routes(relay: Any) -> None:
    listener = make_listener(relay)
    listener.on_request = _answer
    with listener, _client(relay, "HC1") as other_case:
        listener.open(timeout=15)
        token = other_case._token()  # signed for .../HC1
        url = relay.connection_string("hc1").split("Endpoint=", 1)[1].split(";", 1)[0]
        url = url.replace("sb://", "http://").rstrip("/") + "/hc1/"
        response = requests.get(url, headers={"ServiceBusAuthorization": token or ""}, timeout=15)
    if relay.fidelity.case_sensitive_names:
        assert response.status_code == 401, response.text
    else:
        assert response.status_code == 200 and response.content == b"ok /", response.text
