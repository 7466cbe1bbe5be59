"""A listener breaking the protocol: each request it concerns fails at once, nobody else is disturbed."""

from __future__ import annotations

import contextlib
import json
from typing import Iterator, Tuple

import pytest
import requests
import websocket

from hybridconn.emulator import RelayEmulator
from hybridconn.protocol import ACCEPT_WINDOW, RESPONSE_DEADLINE
from tests.support.plain_clients import BackgroundCall, Control, open_ws, respond, shut, token

# The relay fixture waits 10 s for a response: failing "at once" means well before that.
PROMPT = 8.0


def _get(relay: RelayEmulator, rest: str = "/hc1", session: requests.Session = None) -> BackgroundCall:  # type: ignore[assignment]
    call = (session or requests).get  # type: ignore[union-attr]
    return BackgroundCall(
        call, f"{relay.http_base}{rest}", headers={"ServiceBusAuthorization": token(relay)}, timeout=20
    )


@contextlib.contextmanager
def _rendezvous(relay: RelayEmulator, control: Control) -> Iterator[Tuple[BackgroundCall, websocket.WebSocket, str]]:
    """A request whose listener answers over its rendezvous socket: (the call, the socket, the request id)."""
    with requests.Session() as session:
        call = _get(relay, "/hc1/big", session)
        request, _ = control.recv_request()
        rendezvous = open_ws(request["address"])
        try:
            yield call, rendezvous, request["id"]
        finally:
            shut(rendezvous)


def test_service_deadlines_are_the_defaults() -> None:
    relay = RelayEmulator()
    assert relay.response_timeout == RESPONSE_DEADLINE == 60
    assert relay.accept_timeout == ACCEPT_WINDOW == 30


@pytest.mark.parametrize("status", [100, 101, 199])
def test_informational_status_on_the_control_channel_is_500(
    relay: RelayEmulator, control: Control, status: int
) -> None:
    call = _get(relay)
    request, _ = control.recv_request()
    control.respond(request["id"], status, {}, None)
    response = call.join(PROMPT)
    assert response.status_code == 500 and f"invalid status code {status}" in response.text


@pytest.mark.parametrize(
    "head",
    [
        '{"response":{"requestId":"%s","statusCode":"not a number"}}',
        '{"response":{"requestId":"%s","statusCode":200,"body":"yes"}}',
        '{"response":{"requestId":"%s","statusCode":200,"responseHeaders":[]}}',
    ],
)
def test_unparsable_response_fails_its_request_at_once(relay: RelayEmulator, control: Control, head: str) -> None:
    call = _get(relay)
    request, _ = control.recv_request()
    control.ws.send(head % request["id"])
    response = call.join(PROMPT)
    assert response.status_code == 500 and "invalid response" in response.text
    # the channel still serves the next request
    call = _get(relay)
    request, _ = control.recv_request()
    control.respond(request["id"], 200, {}, b"next")
    assert call.join().content == b"next"


def test_text_inside_a_response_body_fails_that_request(relay: RelayEmulator, control: Control) -> None:
    first = _get(relay)
    request, _ = control.recv_request()
    control.ws.send(json.dumps({"response": {"requestId": request["id"], "statusCode": 200, "body": True}}))
    second = _get(relay)
    other, _ = control.recv_request()
    control.respond(other["id"], 200, {}, b"second")  # a text frame where the first body was due
    response = first.join(PROMPT)
    assert response.status_code == 500 and "text frame" in response.text
    assert second.join().content == b"second"


def test_invalid_response_on_a_rendezvous_fails_its_request(relay: RelayEmulator, control: Control) -> None:
    with _rendezvous(relay, control) as (call, rendezvous, request_id):
        rendezvous.send('{"response":{"requestId":"%s","statusCode":"x"}}' % request_id)
        response = call.join(PROMPT)
        assert response.status_code == 500 and "invalid response" in response.text


def test_informational_status_on_a_rendezvous_is_500(relay: RelayEmulator, control: Control) -> None:
    with _rendezvous(relay, control) as (call, rendezvous, request_id):
        respond(rendezvous, request_id, 101, {}, None)
        response = call.join(PROMPT)
        assert response.status_code == 500 and "invalid status code 101" in response.text


def test_stray_binary_on_a_rendezvous_is_ignored(relay: RelayEmulator, control: Control) -> None:
    with _rendezvous(relay, control) as (call, rendezvous, request_id):
        rendezvous.send_binary(b"nobody asked for this")
        respond(rendezvous, request_id, 200, {}, b"fine")
        assert call.join(PROMPT).content == b"fine"


def test_text_inside_a_rendezvous_body_drops_the_sender(relay: RelayEmulator, control: Control) -> None:
    with _rendezvous(relay, control) as (call, rendezvous, request_id):
        rendezvous.send('{"response":{"requestId":"%s","statusCode":200,"body":true}}' % request_id)
        rendezvous.send_frame(websocket.ABNF.create_frame(b"part", websocket.ABNF.OPCODE_BINARY, fin=0))
        rendezvous.send('{"response":{"requestId":"%s","statusCode":200}}' % request_id)
        # the head was written already: the broken body ends the sender's connection
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            call.join(PROMPT)
