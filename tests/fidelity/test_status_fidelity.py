"""A listener's own 502/504 reach the sender (Microsoft's StatusCodes test), told apart from the relay's
by ``Via``: the client raises only for the relay's."""

from __future__ import annotations

from typing import Any

import pytest

from hybridconn import ListenerUnavailableError, RelayedRequest, RelayedResponse
from tests.support.endpoints import make_client, make_listener


@pytest.mark.parametrize("status", [502, 504])
def test_a_listeners_502_or_504_is_delivered_and_not_raised(relay: Any, status: int) -> None:
    listener = make_listener(relay)

    def handler(request: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(status=status, body=b"from the listener")

    listener.on_request = handler
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        response = client.request("GET", "/", timeout=15)
        assert response.status_code == status
        assert "Via" in response.headers
        assert response.content == b"from the listener"
    with make_client(relay) as client, pytest.raises(ListenerUnavailableError):
        client.request("GET", "/", timeout=15)  # the relay's own 502: no listener now
