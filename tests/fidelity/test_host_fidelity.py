"""``Host`` in ``requestHeaders``: the article lists it among the headers the service strips, while
Microsoft's own example and samples suggest it is forwarded. The emulator does either
(``Fidelity(request_host=...)``); the listener sees the sender's Host only when forwarded, and the
WSGI ``HTTP_HOST`` is sensible both ways (the namespace's host when the relay stripped it)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List

import pytest

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn.emulator.fidelity import Fidelity
from hybridconn.wsgi import serve_wsgi
from tests.support.endpoints import make_client, make_listener


def _options(request_host: str) -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "fidelity": Fidelity(request_host=request_host)}


@pytest.mark.parametrize("relay_emulator_options", [_options("strip"), _options("forward")], ids=["strip", "forward"])
def test_host_is_stripped_or_forwarded_as_configured(relay: Any) -> None:
    seen: List[Any] = []

    def handler(request: RelayedRequest) -> RelayedResponse:
        seen.append(request.headers.get("Host"))
        return RelayedResponse(body=b"ok")

    listener = make_listener(relay)
    listener.on_request = handler
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        assert client.request("GET", "/", timeout=15).content == b"ok"
    authority = relay.namespace.split("://", 1)[-1].rstrip("/") if isinstance(relay.namespace, str) else None
    if relay.fidelity.request_host == "strip":
        assert seen == [None]
    else:
        assert seen[0] is not None
        if authority:
            assert seen[0] == authority


@pytest.mark.parametrize("relay_emulator_options", [_options("strip"), _options("forward")], ids=["strip", "forward"])
def test_wsgi_http_host_is_the_relays_host_either_way(relay: Any) -> None:
    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        keys = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT")
        return [json.dumps({key: environ.get(key) for key in keys}).encode()]

    listener = make_listener(relay)
    serve_wsgi(app, listener)
    with listener, make_client(relay) as client:
        listener.open(timeout=15)
        seen = client.request("GET", "/", timeout=15).json()
    host, port = seen["SERVER_NAME"], seen["SERVER_PORT"]
    # The sender addressed the relay, so its Host (when forwarded) is the relay's host too.
    assert seen["HTTP_HOST"] in (host, f"{host}:{port}")
    assert seen["HTTP_HOST"].split(":")[0] == host
