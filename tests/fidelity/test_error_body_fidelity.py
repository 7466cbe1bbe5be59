"""The relay's own errors carry the service's JSON body (azure-relay-dotnet #141, azure-relay #55)
with a tracking id and the service's texts; the client quotes the message, not the JSON."""

from __future__ import annotations

from typing import Any, Dict

import pytest
import requests

from hybridconn import HybridConnectionClient
from hybridconn.exceptions import EndpointNotFoundError, ListenerUnavailableError, RelayTimeoutError
from tests.support.endpoints import make_client, make_listener


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "response_timeout": 1.0, "fidelity": "default"}


def _client(relay: Any, path: str, **options: Any) -> HybridConnectionClient:
    # relay.connection_string(name) would create the hybrid connection: point hc1's at another name.
    cs = relay.connection_string("hc1").replace("EntityPath=hc1", f"EntityPath={path}")
    return HybridConnectionClient.from_connection_string(cs, **options)


def _relay_says(relay: Any, path: str) -> "requests.Response":
    with _client(relay, path, raise_for_relay=False) as client:
        response = client.request("GET", "/", timeout=15)
        _ = response.content  # read before the session closes
        return response


def test_a_missing_hybrid_connection_is_endpoint_does_not_exist(relay: Any) -> None:
    response = _relay_says(relay, "nope")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "EndpointNotFound"
    assert error["message"].startswith("Endpoint does not exist.")
    assert "TrackingId:" in error["message"] and "Via" not in response.headers
    with _client(relay, "nope") as client, pytest.raises(EndpointNotFoundError) as caught:
        client.request("GET", "/", timeout=15)
    assert "Endpoint does not exist" in str(caught.value) and '{"error"' not in str(caught.value)


def test_no_listener_is_a_json_error_and_listener_unavailable(relay: Any) -> None:
    response = _relay_says(relay, "hc1")
    assert response.status_code in (502, 503)
    assert response.json()["error"]["code"] in ("BadGateway", "ServiceUnavailable")
    with make_client(relay) as client, pytest.raises(ListenerUnavailableError):
        client.request("GET", "/", timeout=15)


def test_the_deadline_is_gateway_timeout_with_the_services_text(relay: Any) -> None:
    release = []
    listener = make_listener(relay)

    def slow(request: Any) -> Any:
        import threading
        event = threading.Event()
        release.append(event)
        event.wait(10)
        from hybridconn import RelayedResponse
        return RelayedResponse(body=b"late")

    listener.on_request = slow
    with listener:
        listener.open(timeout=15)
        try:
            response = _relay_says(relay, "hc1")
            assert response.status_code == 504
            error = response.json()["error"]
            assert error["code"] == "GatewayTimeout"
            assert error["message"].startswith(
                "The request was routed to the listener but the listener did not respond in the required time")
            with make_client(relay) as client, pytest.raises(RelayTimeoutError, match="did not respond"):
                client.request("GET", "/", timeout=15)
        finally:
            for event in release:
                event.set()
