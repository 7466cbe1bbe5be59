"""Nobody let in: accept, reject and request addresses are unguessable and single-use.

A listener presents nothing but the address at the rendezvous (no token), so an
attacker without a key who knows the sender's ``sb-hc-id`` or the message's
public ``id`` tries every address it could build: each one is refused 403, the
sender is neither taken over nor rejected, and its data reaches only the real
listener. An address that worked once is refused the second time.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
import websocket

from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.fidelity import Fidelity
from tests.support.endpoints import echo_connection, echo_request, make_client, make_listener
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, refused, respond, shut, token

VICTIM_ID = "victim-tracking-id"


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "response_timeout": 15.0, "accept_timeout": 15.0}


@pytest.fixture
def control(relay: RelayEmulator) -> Iterator[Control]:
    channel = Control(relay)
    yield channel
    channel.close()


def _keyed_id(address: str) -> str:
    return dict(parse_qsl(urlsplit(address).query))["sb-hc-id"]


def _with_id(address: str, value: str) -> str:
    """The real address with its ``sb-hc-id`` replaced: everything else an attacker could copy."""
    keyed = quote(_keyed_id(address), safe="")
    assert address.count(f"sb-hc-id={keyed}") == 1
    return address.replace(f"sb-hc-id={keyed}", f"sb-hc-id={quote(value, safe='')}")


def _forgeries(relay: RelayEmulator, action: str, address: str, public_id: str, known: List[str]) -> List[str]:
    """Addresses an attacker without the key can build from what it knows."""
    secret = _keyed_id(address).rsplit("_", 1)[1]
    flipped = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    guesses = [hc_url(relay, "hc1", action, f"sb-hc-id={quote(k, safe='')}") for k in known + [public_id]]
    guesses += [
        _with_id(address, public_id),                      # the id the message showed, no key
        _with_id(address, f"{public_id}_{'0' * 32}"),      # a made-up key
        _with_id(address, f"{public_id}_{flipped}"),       # one character off
        _with_id(address, f"{public_id}_"),                # an empty key
        _with_id(address, f"{public_id}_{secret}é"),       # the key plus junk (not ASCII)
        _with_id(address, secret),                         # the key alone
    ]
    return guesses


def _connect(relay: RelayEmulator) -> BackgroundCall:
    url = hc_url(relay, "hc1", "connect", f"sb-hc-id={VICTIM_ID}")
    return BackgroundCall(open_ws, url, [f"ServiceBusAuthorization: {token(relay)}"])


def test_attacker_without_key_cannot_take_or_reject_a_relayed_websocket(relay: RelayEmulator,
                                                                       control: Control) -> None:
    sender_call = _connect(relay)
    accept = control.recv_json()["accept"]
    assert VICTIM_ID in accept["id"] and accept["id"] not in (VICTIM_ID, _keyed_id(accept["address"]))
    forgeries = _forgeries(relay, "accept", accept["address"], accept["id"], [VICTIM_ID])
    statuses = [refused(url).status_code for url in forgeries]  # take the connection over
    statuses += [refused(f"{url}&sb-hc-statusCode=200").status_code for url in forgeries]  # or reject it
    assert statuses == [403] * (2 * len(forgeries))
    listener = open_ws(accept["address"])  # the real listener still gets its sender
    sender = sender_call.join()
    try:
        sender.send("for the listener only")
        assert listener.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"for the listener only")
        listener.send_binary(b"reply")
        assert sender.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"reply")
    finally:
        shut(sender)
        shut(listener)


def test_accept_address_is_refused_on_second_use_as_accept_or_reject(relay: RelayEmulator,
                                                                      control: Control) -> None:
    sender_call = _connect(relay)
    accept = control.recv_json()["accept"]
    listener = open_ws(accept["address"])
    sender = sender_call.join()
    try:
        assert refused(accept["address"]).status_code == 403
        assert refused(f"{accept['address']}&sb-hc-statusCode=403").status_code == 403
        sender.send("still connected")  # the refused reuses did not disturb the accepted pair
        assert listener.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"still connected")
    finally:
        shut(sender)
        shut(listener)


def test_reject_address_is_refused_on_second_use(relay: RelayEmulator, control: Control) -> None:
    sender_call = _connect(relay)
    accept = control.recv_json()["accept"]
    assert refused(f"{accept['address']}&sb-hc-statusCode=401").status_code == 410
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender_call.join()
    assert info.value.status_code == 401
    assert refused(f"{accept['address']}&sb-hc-statusCode=401").status_code == 403
    assert refused(accept["address"]).status_code == 403


def test_attacker_without_key_cannot_fetch_a_request_or_reuse_its_address(relay: RelayEmulator,
                                                                          control: Control) -> None:
    body = b"private payload " * 5000  # over 64 kB: announced address-only
    call = BackgroundCall(requests.post, f"{relay.http_base}/hc1/up", data=body,
                          headers={"ServiceBusAuthorization": token(relay)}, timeout=30)
    announced = control.recv_json()["request"]
    forgeries = _forgeries(relay, "request", announced["address"], announced["id"], [])
    assert [refused(url).status_code for url in forgeries] == [403] * len(forgeries)
    rendezvous = open_ws(announced["address"])
    try:
        _, head = rendezvous.recv_data()
        request = json.loads(head)["request"]
        assert request["id"] == announced["id"]
        assert rendezvous.recv_data() == (websocket.ABNF.OPCODE_BINARY, body)  # all of it, to the listener
        # the address is spent once its socket is open: a second socket is refused
        assert refused(announced["address"]).status_code == 403
        respond(rendezvous, request["id"], 200, {}, b"ok")
        response = call.join()
        assert response.status_code == 200 and response.content == b"ok"
    finally:
        shut(rendezvous)
    assert refused(announced["address"]).status_code == 403


def test_the_library_uses_addresses_as_given_even_on_another_host() -> None:
    """Azure's addresses name a gateway, not the host the listener dialled: nothing may rebuild them."""
    with RelayEmulator(hybrid_connections=["hc1"], fidelity=Fidelity(rendezvous_host="localhost")) as relay:
        assert "localhost" not in relay.namespace
        control = Control(relay)
        try:
            sender_call = _connect(relay)
            address = control.recv_json()["accept"]["address"]
            assert urlsplit(address).hostname == "localhost" and urlsplit(address).port == relay.port
            assert refused(f"{address}&sb-hc-statusCode=404").status_code == 410
            with pytest.raises(websocket.WebSocketBadStatusException):
                sender_call.join()
        finally:
            control.close()
        listener = make_listener(relay)
        listener.on_connection(echo_connection)
        listener.on_request(echo_request)
        client = make_client(relay)
        try:
            listener.open(timeout=15)
            with client.connect(timeout=15) as conn:
                conn.send(b"over the gateway")
                assert conn.recv(timeout=15) == b"over the gateway"
            big = b"b" * 200_000  # address-only request and response: both over a rendezvous socket
            response = client.request("POST", "/big", data=big, timeout=(10, 30))
            assert response.status_code == 200 and response.content == b"/big|" + big
        finally:
            client.close()
            listener.close(timeout=10)
