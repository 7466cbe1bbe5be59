"""Hostile tokens at the emulator: audiences are matched only against the names it is configured
with (never the client's ``Host`` header), and every ``se`` of any size, sign or spelling is a 401,
never an exception or a dropped connection. The emulator keeps serving a healthy pair throughout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from typing import Any, Dict, List, Tuple
from urllib.parse import quote

import pytest
import requests

from hybridconn import AuthenticationError, HybridConnectionListener, RelayedRequest, RelayedResponse
from hybridconn._transport import open_websocket
from hybridconn.addresses import listen_url
from hybridconn.auth import AUTH_HEADER, parse_sas_token
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from tests.support.endpoints import make_client, make_listener


def _signed(resource: str, se: str, key: str = DEFAULT_KEY, key_name: str = DEFAULT_KEY_NAME) -> str:
    """A token whose signature is valid for exactly this ``sr`` and ``se`` text, whatever ``se`` is."""
    encoded = quote(resource, safe="-_.!~*'()")
    digest = hmac.new(key.encode(), f"{encoded}\n{se}".encode(), hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={encoded}&sig={signature}&se={quote(se, safe='')}&skn={key_name}"


HOSTILE_EXPIRIES = [
    "1" + "0" * 30,  # far beyond a 64-bit integer
    "9" * 400,  # float() of it overflows
    "9" * 5000,  # beyond Python's int() digit limit
    "99999999999999999999",  # 20 digits
    "-1", "-99999999999", "+4102444800", "4102444800.5", "1e12", "0x7fffffff", "4_102_444_800",
    "\u0664\u0661\u0660\u0662\u0664\u0664\u0664\u0668\u0660\u0660",  # Arabic-Indic digits of 4102444800
    " 4102444800", "", "NaN", "inf",
]


def _emulator_audience(relay: RelayEmulator, path: str = "hc1") -> str:
    return relay.http_base + "/" + path


@pytest.mark.parametrize("se", HOSTILE_EXPIRIES, ids=lambda se: repr(se[:24]))
def test_any_expiry_field_is_a_401_for_a_sender(relay: RelayEmulator, se: str) -> None:
    token = _signed(_emulator_audience(relay), se)
    response = requests.post(relay.http_base + "/hc1/x", headers={AUTH_HEADER: token}, data=b"hi", timeout=30)
    assert response.status_code == 401, (response.status_code, response.text[:200])
    assert "Via" not in response.headers  # the relay's answer


@pytest.mark.parametrize("se", HOSTILE_EXPIRIES[:6], ids=lambda se: repr(se[:24]))
def test_any_expiry_field_is_a_401_for_a_listener(relay: RelayEmulator, se: str) -> None:
    token = _signed(_emulator_audience(relay), se)
    with pytest.raises(AuthenticationError):
        open_websocket(listen_url(relay.namespace, "hc1"), headers={AUTH_HEADER: token}, timeout=10, what="listen")


def test_the_library_parses_hostile_expiries_as_401s() -> None:
    for se in HOSTILE_EXPIRIES:
        with pytest.raises(AuthenticationError) as caught:
            parse_sas_token(_signed("http://ns/hc1", se))
        assert caught.value.status_code == 401
    assert parse_sas_token(_signed("http://ns/hc1", "4102444800")).expiry == 4102444800


def _raw_request(relay: RelayEmulator, host: str, token: str) -> bytes:
    """A request with a ``Host`` of the client's choosing (requests would send the real one)."""
    port = relay.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /hc1/x HTTP/1.1\r\nHost: {host}\r\n{AUTH_HEADER}: {token}\r\n"
                     f"Content-Length: 2\r\nConnection: close\r\n\r\nhi".encode())
        chunks: List[bytes] = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


@pytest.fixture
def healthy(relay: RelayEmulator) -> Any:
    listener = make_listener(relay)
    listener.on_request = lambda req: RelayedResponse(body=b"ok:" + req.body)
    listener.open(timeout=15)
    client = make_client(relay)
    try:
        yield client
    finally:
        client.close()
        listener.close()


def test_a_token_for_another_namespace_is_refused_whatever_the_host_header(relay: RelayEmulator, healthy: Any) -> None:
    # Signed with the emulator's own key, but for another namespace: a Host header naming that
    # namespace must not make it valid here.
    token = _signed("http://other-namespace.servicebus.windows.net/hc1", "4102444800")
    answer = _raw_request(relay, "other-namespace.servicebus.windows.net", token)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # the emulator's own audience, addressed by any Host, still works (the healthy pair too)
    own = _signed(_emulator_audience(relay), "4102444800")
    assert _raw_request(relay, "whatever.example", own).startswith(b"HTTP/1.1 200")
    assert healthy.request("POST", "/x", data=b"1", timeout=30).content == b"ok:1"


def test_a_listener_token_for_another_namespace_is_refused(relay: RelayEmulator) -> None:
    token = _signed("http://other-namespace.servicebus.windows.net/hc1", "4102444800")
    url = listen_url(relay.namespace, "hc1")
    with pytest.raises(AuthenticationError):
        open_websocket(url, headers={AUTH_HEADER: token}, timeout=10, what="listen")


@pytest.fixture
def relay_emulator_options(request: pytest.FixtureRequest) -> Dict[str, Any]:
    hostnames: Tuple[str, ...] = getattr(request, "param", ())
    return {"hybrid_connections": ["hc1"], "hostnames": hostnames}


@pytest.mark.parametrize("relay_emulator_options", [("devbox.example",)], indirect=True)
def test_configured_hostnames_are_valid_audiences(relay: RelayEmulator) -> None:
    token = _signed(f"http://devbox.example:{relay.port}/hc1", "4102444800")
    assert _raw_request(relay, f"devbox.example:{relay.port}", token).startswith(b"HTTP/1.1 502")  # no listener yet
    listener = HybridConnectionListener.from_connection_string(relay.connection_string("hc1"))

    def handler(req: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=b"ok")

    listener.on_request = handler
    listener.open(timeout=15)
    try:
        assert _raw_request(relay, "anything", token).startswith(b"HTTP/1.1 200")
    finally:
        listener.close()
