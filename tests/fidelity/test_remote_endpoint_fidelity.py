"""``remoteEndpoint`` in request messages (dotnet ``ListenerCommand.cs``): the sender's address and port
reach the handler (``RelayedRequest.remote_address``/``remote_port``) and WSGI (``REMOTE_ADDR``/``REMOTE_PORT``)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List

import pytest

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn._listener.handling import remote_port
from hybridconn.wsgi import serve_wsgi
from tests.support.endpoints import make_client, make_listener


def test_a_handler_sees_the_senders_address_and_port(relay: Any) -> None:
    seen: List[RelayedRequest] = []

    def handler(request: RelayedRequest) -> RelayedResponse:
        seen.append(request)
        return RelayedResponse(body=b"ok")

    listener = make_listener(relay)
    listener.on_request = handler
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        assert client.request("GET", "/", timeout=15).content == b"ok"
    assert seen[0].remote_address == "127.0.0.1"
    assert isinstance(seen[0].remote_port, int) and 0 < seen[0].remote_port < 65536
    assert seen[0].remote_port != relay.port


def test_wsgi_gets_remote_addr_and_remote_port(relay: Any) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ.get(k) for k in ("REMOTE_ADDR", "REMOTE_PORT")}).encode()]

    listener = make_listener(relay)
    serve_wsgi(app, listener)
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        got = client.request("GET", "/", timeout=15).json()
    assert got["REMOTE_ADDR"] == "127.0.0.1"
    assert got["REMOTE_PORT"].isdigit() and 0 < int(got["REMOTE_PORT"]) < 65536


@pytest.mark.parametrize("extra, port", [({"remoteEndpoint": {"address": "10.0.0.1", "port": 5000}}, 5000),
                                         ({"remoteEndpoint": {"port": "443"}}, 443),
                                         ({"remoteEndpoint": {"port": 0}}, None),
                                         ({"remoteEndpoint": {"port": 70000}}, None),
                                         ({"remoteEndpoint": {"port": True}}, None),
                                         ({"remoteEndpoint": "x"}, None), (None, None)])
def test_a_port_of_any_other_shape_is_ignored(extra: Any, port: Any) -> None:
    assert remote_port(extra) == port
