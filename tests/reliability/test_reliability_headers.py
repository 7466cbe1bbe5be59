"""Response headers outside ASCII: latin-1 values (legal under PEP 3333, such as
``filename="café.txt"``) reach the sender intact, from a handler, a WSGI app and a listener written
on the protocol; a value HTTP/1.1 cannot carry is a 500 with a tracking id, never a dropped
connection."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

import pytest

from hybridconn import HandshakeError, RelayedRequest, RelayedResponse
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from hybridconn.protocol import Request
from hybridconn.wsgi import serve_wsgi
from tests.support.endpoints import make_client, make_listener
from tests.support.tiny_listener import TinyListener

CAFE = 'attachment; filename="café.txt"'
UNSENDABLE = {
    "euro": 'attachment; filename="5€.txt"',  # beyond latin-1
    "snowman": "\u2603",
    "emoji": "\U0001F600",
}


def _handler(req: RelayedRequest) -> RelayedResponse:
    name = req.path.strip("/")
    value = CAFE if name == "cafe" else UNSENDABLE[name]
    body: Any = b"x" * 100_000 if req.query == "big" else b"file"
    if req.query == "stream":
        body = iter([b"file"])
    return RelayedResponse(headers={"Content-Disposition": value}, body=body)


@pytest.fixture
def client(relay: RelayEmulator) -> Iterator[Any]:
    listener = make_listener(relay)
    listener.on_request = _handler
    listener.open(timeout=15)
    sender = make_client(relay)
    try:
        yield sender
    finally:
        sender.close()
        listener.close()


@pytest.mark.parametrize("query", ["", "big", "stream"])  # control channel, rendezvous, streamed
def test_a_latin1_header_value_reaches_the_sender(client: Any, query: str) -> None:
    response = client.request("GET", f"/cafe?{query}" if query else "/cafe", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == CAFE  # requests decodes header bytes as latin-1


@pytest.mark.parametrize("name", sorted(UNSENDABLE))
@pytest.mark.parametrize("query", ["", "stream"])
def test_an_unsendable_header_value_is_a_500_with_a_tracking_id(client: Any, name: str, query: str) -> None:
    response = client.request("GET", f"/{name}?{query}" if query else f"/{name}", timeout=30)
    assert response.status_code == 500
    assert "TrackingId" in response.text
    assert "Via" in response.headers  # the listener's own 500
    assert client.request("GET", "/cafe", timeout=30).status_code == 200  # the pair keeps working


def _wsgi(environ: Dict[str, Any], start_response: Any) -> Any:
    value = CAFE if environ["PATH_INFO"] == "/cafe" else UNSENDABLE["euro"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Disposition", value)])
    return [b"file"]


def test_wsgi_header_values_are_latin1(relay: RelayEmulator) -> None:
    listener = make_listener(relay)
    serve_wsgi(_wsgi, listener)
    listener.open(timeout=15)
    sender = make_client(relay)
    try:
        ok = sender.request("GET", "/cafe", timeout=30)
        assert ok.status_code == 200 and ok.headers["Content-Disposition"] == CAFE and ok.content == b"file"
        bad = sender.request("GET", "/euro", timeout=30)
        assert bad.status_code == 500 and "TrackingId" in bad.text
    finally:
        sender.close()
        listener.close()


def _raw_reply(request: Request, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
    name = request.request_target.rsplit("/", 1)[-1]
    value = CAFE if name == "cafe" else UNSENDABLE[name]
    return 200, {"Content-Disposition": value}, b"raw"


@pytest.mark.parametrize("name", ["cafe", *sorted(UNSENDABLE)])
def test_the_emulator_answers_whatever_header_a_listener_sends(relay: RelayEmulator, name: str) -> None:
    with TinyListener(relay.namespace, "hc1", DEFAULT_KEY_NAME, DEFAULT_KEY, on_request=_raw_reply):
        sender = make_client(relay)
        try:
            if name == "cafe":
                response = sender.request("GET", f"/{name}", timeout=30)
                assert response.status_code == 200 and response.headers["Content-Disposition"] == CAFE
            else:  # the relay cannot write it: its own 500 (no Via), never a dropped connection
                with pytest.raises(HandshakeError) as caught:
                    sender.request("GET", f"/{name}", timeout=30)
                assert caught.value.status_code == 500 and caught.value.tracking_id
        finally:
            sender.close()
