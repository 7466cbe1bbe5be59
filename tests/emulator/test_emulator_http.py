"""Relayed HTTP: the control channel path, rendezvous, the 64 kB rules, violations, persistence."""

from __future__ import annotations

import json
import socket
from typing import Iterator

import pytest
import requests
import websocket

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import BackgroundCall, Control, open_ws, respond, shut, token


def _url(relay: RelayEmulator, rest: str = "/hc1") -> str:
    return f"{relay.http_base}{rest}"


def _auth(relay: RelayEmulator) -> dict:
    return {"ServiceBusAuthorization": token(relay)}


def _post(
    relay: RelayEmulator,
    rest: str,
    data: object = None,
    method: str = "POST",
    session: requests.Session = None,
    **kwargs: object,
) -> BackgroundCall:  # type: ignore[assignment]
    headers = dict(_auth(relay), **kwargs.pop("headers", {}))  # type: ignore[arg-type]
    call = (session or requests).request  # type: ignore[union-attr]
    return BackgroundCall(call, method, _url(relay, rest), data=data, headers=headers, timeout=20, **kwargs)


def test_small_request_goes_over_the_control_channel(relay: RelayEmulator, control: Control) -> None:
    call = _post(relay, "/hc1/orders/7?x=1&sb-hc-id=abc", b"payload", headers={"X-App": "1", "Via": "1.1 proxy"})
    request, body = control.recv_request()
    assert request["method"] == "POST" and body == b"payload" and request["body"] is True
    assert request["requestTarget"] == "/hc1/orders/7?x=1"
    headers = {k.lower(): v for k, v in request["requestHeaders"].items()}
    assert headers["x-app"] == "1" and headers["via"] == "1.1 proxy"
    for stripped in ("host", "content-length", "connection", "servicebusauthorization"):
        assert stripped not in headers
    assert "sb-hc-action=request" in request["address"]
    control.respond(request["id"], "201", {"Content-Type": "text/plain", "X-Out": "y"}, b"created")
    response = call.join()
    assert response.status_code == 201 and response.content == b"created"
    assert response.headers["X-Out"] == "y" and response.headers["Content-Length"] == "7"
    assert response.headers["Via"].startswith("1.1 127.0.0.1:")


def test_keep_alive_and_bodiless_requests(relay: RelayEmulator, control: Control) -> None:
    with requests.Session() as session:
        for i in range(3):
            call = _post(relay, f"/hc1?i={i}", method="GET", session=session)
            request, body = control.recv_request()
            assert body is None and request["body"] is False and request["requestTarget"] == f"/hc1?i={i}"
            control.respond(request["id"], 200, {}, f"r{i}".encode(), description="Fine")
            response = call.join()
            assert response.content == f"r{i}".encode() and response.reason == "Fine"


def test_response_body_may_be_fragmented(relay: RelayEmulator, control: Control) -> None:
    call = _post(relay, "/hc1", method="GET")
    request, _ = control.recv_request()
    respond(control.ws, request["id"], 200, {}, None)
    # hyco-https style: body:false still followed by an empty binary message - ignored
    control.ws.send_binary(b"")
    assert call.join().content == b""
    call = _post(relay, "/hc1", method="GET")
    request, _ = control.recv_request()
    control.ws.send('{"response":{"requestId":"%s","statusCode":200,"body":true}}' % request["id"])
    control.ws.send_frame(websocket.ABNF.create_frame(b"ab", websocket.ABNF.OPCODE_BINARY, fin=0))
    control.ws.send_frame(websocket.ABNF.create_frame(b"cd", websocket.ABNF.OPCODE_CONT, fin=0))
    control.ws.send_frame(websocket.ABNF.create_frame(b"", websocket.ABNF.OPCODE_CONT, fin=1))
    assert call.join().content == b"abcd"


def test_no_listener_is_502(relay: RelayEmulator) -> None:
    response = requests.get(_url(relay), headers=_auth(relay), timeout=10)
    assert response.status_code == 502 and "TrackingId:" in response.text and "Via" not in response.headers


def test_no_response_in_time_is_504() -> None:
    with RelayEmulator(response_timeout=1.0) as relay:
        channel = Control(relay)
        try:
            response = requests.get(_url(relay), headers=_auth(relay), timeout=10)
            assert response.status_code == 504 and "TrackingId:" in response.reason
        finally:
            channel.close()


@pytest.mark.parametrize("status", [502, 504, "504"])
def test_listener_answering_502_or_504_is_delivered_with_via(relay: RelayEmulator, control: Control,
                                                             status: object) -> None:
    # As the service does (Microsoft's StatusCodes test, HybridRequestTests.cs).
    call = _post(relay, "/hc1", method="GET")
    request, _ = control.recv_request()
    control.respond(request["id"], status, {}, b"x")
    response = call.join()
    assert response.status_code == int(str(status)) and "Via" in response.headers and response.content == b"x"


def test_response_body_over_64kb_on_the_control_channel_is_a_violation(relay: RelayEmulator, control: Control) -> None:
    call = _post(relay, "/hc1", method="GET")
    request, _ = control.recv_request()
    control.respond(request["id"], 200, {}, b"x" * 65537)
    response = call.join()
    assert response.status_code == 500 and "64 kB" in response.text
    call = _post(relay, "/hc1", method="GET")  # the channel still works; exactly 64 kB is fine
    request, _ = control.recv_request()
    control.respond(request["id"], 200, {}, b"y" * 65536)
    assert call.join().content == b"y" * 65536


def _chunks() -> Iterator[bytes]:
    yield b"chunk-1;"
    yield b"chunk-2"


@pytest.mark.parametrize("kind", ["large", "chunked"])
def test_large_or_chunked_requests_go_address_only(relay: RelayEmulator, control: Control, kind: str) -> None:
    data = b"z" * 70000 if kind == "large" else _chunks()
    call = _post(relay, "/hc1/up?q=2", data)
    announced = control.recv_json()["request"]
    assert set(announced) == {"address", "id"}  # no method, no body flag: fetch it over rendezvous
    rendezvous = open_ws(announced["address"])
    try:
        opcode, head = rendezvous.recv_data()


        request = json.loads(head)["request"]
        assert (
            request["id"] == announced["id"]
            and request["method"] == "POST"
            and request["requestTarget"] == "/hc1/up?q=2"
        )
        _, body = rendezvous.recv_data()
        assert body == (b"z" * 70000 if kind == "large" else b"chunk-1;chunk-2")
        respond(rendezvous, request["id"], 200, {}, b"ok")
        assert call.join().content == b"ok"
    finally:
        shut(rendezvous)


def test_response_over_rendezvous_is_streamed_and_persists(relay: RelayEmulator, control: Control) -> None:
    with requests.Session() as session:
        call = _post(relay, "/hc1/big", method="GET", session=session, stream=True)
        request, _ = control.recv_request()
        rendezvous = open_ws(request["address"])
        try:
            rendezvous.send(
                '{"response":{"requestId":"%s","statusCode":200,"responseHeaders":{"X-R":"1"},"body":true}}'
                % request["id"]
            )
            rendezvous.send_frame(websocket.ABNF.create_frame(b"a" * 70000, websocket.ABNF.OPCODE_BINARY, fin=0))
            rendezvous.send_frame(websocket.ABNF.create_frame(b"b" * 10, websocket.ABNF.OPCODE_CONT, fin=1))
            response = call.join()
            assert "Content-Length" not in response.headers and response.headers["Transfer-Encoding"] == "chunked"
            assert response.content == b"a" * 70000 + b"b" * 10
            # the next request on the same connection comes over the rendezvous socket
            call = _post(relay, "/hc1/next", b"again", session=session)
            _, head = rendezvous.recv_data()


            second = json.loads(head)["request"]
            assert second["requestTarget"] == "/hc1/next" and second["body"] is True
            assert rendezvous.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"again")
            rendezvous.send('{"response":{"requestId":"%s","statusCode":200,"body":true}}' % second["id"])
            rendezvous.send_binary(b"second")
            rendezvous.send_close(1000)  # a body may also end with the close; the sender's connection goes
            assert call.join().content == b"second"
        finally:
            shut(rendezvous)


def test_listener_dropping_rendezvous_drops_the_sender_connection(relay: RelayEmulator, control: Control) -> None:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    try:
        sock.sendall(
            b"GET /hc1/a HTTP/1.1\r\nHost: x\r\nServiceBusAuthorization: " + token(relay).encode() + b"\r\n\r\n"
        )
        request, _ = control.recv_request()
        rendezvous = open_ws(request["address"])
        respond(rendezvous, request["id"], 200, {}, b"first")
        received = b""
        while not received.endswith(b"0\r\n\r\n"):  # the whole chunked response
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        rendezvous.close(timeout=2)
        rendezvous.shutdown()
        sock.settimeout(10)
        assert sock.recv(65536) == b""  # the emulator dropped the sender's connection
    finally:
        sock.close()


def test_rendezvous_address_expires_once_answered(relay: RelayEmulator, control: Control) -> None:
    call = _post(relay, "/hc1", method="GET")
    request, _ = control.recv_request()
    control.respond(request["id"], 204)
    assert call.join().status_code == 204
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        shut(open_ws(request["address"]))
    assert info.value.status_code == 403


def test_head_request_gets_no_body(relay: RelayEmulator, control: Control) -> None:
    call = _post(relay, "/hc1", method="HEAD")
    request, _ = control.recv_request()
    assert request["method"] == "HEAD"
    control.respond(request["id"], 200, {"Content-Length": "5"}, b"hello")  # hyco-https sends it anyway
    response = call.join()
    assert response.status_code == 200 and response.content == b""
