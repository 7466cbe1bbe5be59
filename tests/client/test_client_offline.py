"""HybridConnectionClient against a scripted loopback server: addresses, signing, error mapping, proxies.

The scripted server plays a relay that answers with shapes the emulator never
produces (every relay error status, with and without Via, a silent relay).
The same behaviour through the real emulator is in test_client_emulator.py.
"""

from __future__ import annotations

import re
import traceback
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from hybridconn import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HandshakeError,
    HybridConnectionClient,
    ListenerUnavailableError,
    ProtocolError,
    RelayConnectionError,
    RelayTimeoutError,
    SharedAccessKeyTokenProvider,
    parse_sas_token,
    verify_sas_token,
)
from hybridconn.auth import ConnectionString
from tests.support.proxy import ConnectProxy
from tests.support.scripted_server import ScriptedServer

KEY_NAME, KEY = "send", "c2VjcmV0LWtleS1mb3ItdGVzdHM="


def make_client(server: ScriptedServer, **options: object) -> HybridConnectionClient:
    options.setdefault("token_provider", SharedAccessKeyTokenProvider(KEY_NAME, KEY))
    return HybridConnectionClient(server.base, "hc1", **options)  # type: ignore[arg-type]


def signature_of(token: str) -> str:
    return parse_sas_token(token).signature


# ---------------------------------------------------------------- addresses


def test_http_url_quotes_the_suffix_and_merges_queries() -> None:
    client = HybridConnectionClient("ws://127.0.0.1:9350", "hc1")
    assert client.http_url() == "http://127.0.0.1:9350/hc1"
    assert client.http_url("/a b/c?x=1", query={"y": "2"}) == "http://127.0.0.1:9350/hc1/a%20b/c?x=1&y=2"
    assert client.http_url("plain", query=[("k", "v w")]) == "http://127.0.0.1:9350/hc1/plain?k=v%20w"


def test_urls_for_a_cloud_namespace_use_tls_on_443() -> None:
    client = HybridConnectionClient("contoso.servicebus.windows.net", "/hc1/")
    assert client.http_url("x") == "https://contoso.servicebus.windows.net/hc1/x"
    url = client.ws_url("s", query="q=1", id="abc")
    assert url == "wss://contoso.servicebus.windows.net/$hc/hc1/s?q=1&sb-hc-action=connect&sb-hc-id=abc"
    assert client.audience == "http://contoso.servicebus.windows.net/hc1"


def test_relay_query_names_are_refused() -> None:
    client = HybridConnectionClient("ws://127.0.0.1:9350", "hc1")
    with pytest.raises(ConfigurationError, match="sb-hc-"):
        client.http_url("/x?sb-hc-token=forged")
    with pytest.raises(ConfigurationError, match="sb-hc-"):
        client.ws_url(query={"SB-HC-ID": "x"})


def test_from_connection_string() -> None:
    cs = "Endpoint=sb://127.0.0.1:9350/;SharedAccessKeyName=send;SharedAccessKey=k;EntityPath=hc1;UseDevelopmentEmulator=true"
    client = HybridConnectionClient.from_connection_string(cs, token_ttl=60, proxy="http://127.0.0.1:3128")
    assert (client.path, client.http_url(), client.proxy) == (
        "hc1",
        "http://127.0.0.1:9350/hc1",
        "http://127.0.0.1:3128",
    )
    assert isinstance(client.token_provider, SharedAccessKeyTokenProvider) and client.token_provider.ttl == 60
    parsed = ConnectionString.parse(cs.replace(";EntityPath=hc1", ""))
    assert HybridConnectionClient.from_connection_string(parsed, path="other").path == "other"
    with pytest.raises(ConfigurationError):
        HybridConnectionClient.from_connection_string(cs, path="other")
    anonymous = HybridConnectionClient.from_connection_string(
        "Endpoint=sb://ns.example/;EntityPath=hc1", token_provider=None
    )
    assert anonymous.token_provider is None
    with pytest.raises(ConfigurationError, match="no SharedAccessKeyName and SharedAccessKey"):
        HybridConnectionClient.from_connection_string("Endpoint=sb://ns.example/;EntityPath=hc1")


def test_bad_options_are_configuration_errors(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="CA bundle"):
        HybridConnectionClient("ws://127.0.0.1:1", "hc1", verify="/no/such/ca.pem")
    with pytest.raises(ConfigurationError):
        HybridConnectionClient("ws://127.0.0.1:1", "")
    with pytest.raises(ConfigurationError):
        HybridConnectionClient("ftp://127.0.0.1:1", "hc1")


# ---------------------------------------------------------------- signing


def test_requests_are_signed_for_the_hybrid_connection_whatever_the_suffix(scripted: ScriptedServer) -> None:
    scripted.answer(200, "OK", {"Via": "1.1 relay"}, b"fine")
    with make_client(scripted) as client:
        assert client.request("GET", "/a/b?x=1").text == "fine"
        assert client.request("POST", "other", data=b"body").status_code == 200
    first, second = scripted.requests
    assert (first.method, first.target) == ("GET", "/hc1/a/b?x=1")
    assert (second.method, second.target, second.body) == ("POST", "/hc1/other", b"body")
    token = first.headers["ServiceBusAuthorization"]
    assert second.headers["ServiceBusAuthorization"] == token  # cached until its renewal point
    verify_sas_token(token, {KEY_NAME: KEY}, f"{scripted.base}/hc1")
    assert parse_sas_token(token).audience == f"{scripted.base}/hc1"


def test_session_is_signed_for_plain_requests_code(scripted: ScriptedServer) -> None:
    scripted.answer(404, "Not Found")  # the session returns whatever comes back
    with make_client(scripted) as client:
        response = client.session().get(client.http_url("/x"))
        assert response.status_code == 404
        assert client.session() is client.session()
    assert "ServiceBusAuthorization" in scripted.requests[0].headers


def test_token_in_query_puts_the_token_in_sb_hc_token(scripted: ScriptedServer) -> None:
    scripted.answer(200, "OK", {"Via": "1.1 relay"})
    with make_client(scripted, token_in_query=True) as client:
        client.request("GET", "/s?app=1")
    seen = scripted.requests[0]
    assert "ServiceBusAuthorization" not in seen.headers
    query = dict(parse_qsl(urlsplit(seen.target).query))
    assert query["app"] == "1"
    verify_sas_token(query["sb-hc-token"], {KEY_NAME: KEY}, f"{scripted.base}/hc1")


def test_anonymous_sender_sends_no_token(scripted: ScriptedServer) -> None:
    scripted.answer(200, "OK", {"Via": "1.1 relay"})
    with HybridConnectionClient(scripted.base, "hc1") as client:
        client.request("GET")
    assert "ServiceBusAuthorization" not in scripted.requests[0].headers
    assert "sb-hc-token" not in scripted.requests[0].target


def test_redirects_are_returned_not_followed(scripted: ScriptedServer) -> None:
    scripted.answer(302, "Found", {"Via": "1.1 relay", "Location": "http://elsewhere.invalid/"})
    with make_client(scripted) as client:
        response = client.request("GET", "/go")
    assert response.status_code == 302 and len(scripted.requests) == 1


# ---------------------------------------------------------------- relay errors over HTTP


@pytest.mark.parametrize(
    "status, error_type",
    [
        (401, AuthenticationError),
        (403, AuthorizationError),
        (404, EndpointNotFoundError),
        (500, HandshakeError),
        (502, ListenerUnavailableError),
        (503, ListenerUnavailableError),
        (504, RelayTimeoutError),
    ],
)
def test_relay_error_responses_raise_typed_errors(scripted: ScriptedServer, status: int, error_type: type) -> None:
    scripted.answer(status, "Relay Says No", {"Content-Type": "text/plain"}, b"Details here. TrackingId:4f2c-99_G1")
    with make_client(scripted) as client:
        with pytest.raises(error_type) as caught:
            client.request("GET", "/x")
    error = caught.value
    assert error.status_code == status  # type: ignore[attr-defined]
    assert error.tracking_id == "4f2c-99_G1"  # type: ignore[attr-defined]
    assert "Relay Says No" in error.reason and "Details here" in error.reason  # type: ignore[attr-defined]
    assert error.response.status_code == status  # type: ignore[attr-defined]


def test_listener_responses_with_via_come_back_untouched(scripted: ScriptedServer) -> None:
    for status in (401, 404, 502, 503, 504):
        scripted.answer(status, "From The Listener", {"Via": "1.1 127.0.0.1"}, b"listener body")
        with make_client(scripted) as client:
            response = client.request("GET", "/x")
        assert (response.status_code, response.reason, response.content) == (
            status,
            "From The Listener",
            b"listener body",
        )


def test_raise_for_relay_false_returns_relay_errors(scripted: ScriptedServer) -> None:
    scripted.answer(502, "Bad Gateway")
    with make_client(scripted, raise_for_relay=False) as client:
        assert client.request("GET", "/x").status_code == 502


def test_unreachable_relay_is_a_connection_error(closed_port: int) -> None:
    with HybridConnectionClient(f"ws://127.0.0.1:{closed_port}", "hc1") as client:
        with pytest.raises(RelayConnectionError, match="could not GET"):
            client.request("GET", "/x")


def test_silent_relay_times_out(scripted: ScriptedServer) -> None:
    scripted.silent.set()
    with make_client(scripted) as client:
        with pytest.raises(RelayTimeoutError):
            client.request("GET", "/x", timeout=0.5)


def test_no_token_in_messages_or_chained_tracebacks(closed_port: int) -> None:
    provider = SharedAccessKeyTokenProvider(KEY_NAME, KEY)
    with HybridConnectionClient(f"ws://127.0.0.1:{closed_port}", "hc1", provider, token_in_query=True) as client:
        signature = signature_of(provider.get_token(client.audience)[0])
        with pytest.raises(RelayConnectionError) as http_error:
            client.request("GET", "/x")
        with pytest.raises(RelayConnectionError) as ws_error:
            client.connect(timeout=5)
    for caught in (http_error, ws_error):
        text = "".join(traceback.format_exception(caught.type, caught.value, caught.tb))
        # urllib3 quotes the URL (with the token in it) in its messages; the whole chain is scrubbed.
        assert all(value == "<redacted>" for value in re.findall(r"sb-hc-token=([^&\s'\"]*)", text))
        assert "SharedAccessSignature" not in text
        for form in (signature, quote(signature, safe=""), quote(quote(signature, safe=""), safe="")):
            assert form not in text


# ---------------------------------------------------------------- WebSocket handshake refusals


@pytest.mark.parametrize(
    "status, reason, error_type",
    [
        (401, "Unauthorized TrackingId:aa-1", AuthenticationError),
        (403, "Forbidden TrackingId:aa-1", AuthorizationError),
        (404, "Endpoint does not exist TrackingId:aa-1", EndpointNotFoundError),
        (502, "Bad Gateway TrackingId:aa-1", ListenerUnavailableError),
        (504, "Gateway Timeout TrackingId:aa-1", RelayTimeoutError),
        (408, "Request Timeout TrackingId:aa-1", RelayTimeoutError),
        (404, "no such room", ConnectionRejectedError),  # a listener's reject: no tracking id
        (400, "Rejected by user code", ConnectionRejectedError),
        (418, "I'm a teapot", ConnectionRejectedError),
        (451, "Unavailable For Legal Reasons TrackingId:aa-1", ConnectionRejectedError),
    ],
)
def test_connect_refusals_are_typed(scripted: ScriptedServer, status: int, reason: str, error_type: type) -> None:
    scripted.answer(status, reason)
    with make_client(scripted) as client:
        with pytest.raises(error_type) as caught:
            client.connect(timeout=10)
    if error_type is not RelayTimeoutError:
        error = caught.value
        assert (error.status_code, error.reason) == (status, reason)  # type: ignore[attr-defined]
        assert error.tracking_id == ("aa-1" if "TrackingId" in reason else None)  # type: ignore[attr-defined]
        assert isinstance(error, HandshakeError)


def test_connect_sends_suffix_query_id_headers_and_subprotocols(scripted: ScriptedServer) -> None:
    scripted.answer(404, "Not Found TrackingId:x")
    with make_client(scripted) as client:
        with pytest.raises(EndpointNotFoundError):
            client.connect(
                headers={"X-App": "v1"},
                subprotocols=["chat", "json"],
                suffix="/room 1?a=1",
                query={"b": "2"},
                id="my-id",
            )
    seen = scripted.requests[0]
    parts = urlsplit(seen.target)
    assert parts.path == "/$hc/hc1/room%201"
    assert parse_qsl(parts.query) == [("a", "1"), ("b", "2"), ("sb-hc-action", "connect"), ("sb-hc-id", "my-id")]
    assert seen.headers["X-App"] == "v1"
    assert seen.headers["Sec-WebSocket-Protocol"] == "chat, json"
    verify_sas_token(seen.headers["ServiceBusAuthorization"], {KEY_NAME: KEY}, f"{scripted.base}/hc1")


def test_a_subprotocol_that_was_not_offered_fails_the_connection(scripted: ScriptedServer) -> None:
    scripted.upgrade_subprotocol = "mqtt"
    with make_client(scripted) as client:
        with pytest.raises(ProtocolError, match="mqtt"):
            client.connect(subprotocols=["chat"], timeout=10)
        with pytest.raises(ProtocolError, match="mqtt"):
            client.connect(timeout=10)


def test_a_listener_may_choose_no_subprotocol(scripted: ScriptedServer) -> None:
    scripted.upgrade_subprotocol = ""
    with make_client(scripted) as client:
        conn = client.connect(subprotocols=["chat"], timeout=10)
        assert conn.subprotocol is None
        conn.abort()
    scripted.upgrade_subprotocol = "CHAT"
    with make_client(scripted) as client:
        conn = client.connect(subprotocols=["chat", "json"], timeout=10)
        assert conn.subprotocol == "chat"
        conn.abort()


def test_connect_with_token_in_query_and_a_generated_id(scripted: ScriptedServer) -> None:
    scripted.answer(404, "Not Found TrackingId:x")
    with make_client(scripted, token_in_query=True) as client:
        with pytest.raises(EndpointNotFoundError):
            client.connect()
    seen = scripted.requests[0]
    query = dict(parse_qsl(urlsplit(seen.target).query))
    assert "ServiceBusAuthorization" not in seen.headers
    assert len(query["sb-hc-id"]) == 36  # a fresh UUID for end-to-end tracing
    verify_sas_token(query["sb-hc-token"], {KEY_NAME: KEY}, f"{scripted.base}/hc1")


def test_connect_to_a_silent_relay_times_out(scripted: ScriptedServer) -> None:
    scripted.silent.set()
    with make_client(scripted) as client:
        with pytest.raises(RelayTimeoutError):
            client.connect(timeout=0.5)


def test_connect_to_nothing_is_a_connection_error(closed_port: int) -> None:
    with HybridConnectionClient(f"ws://127.0.0.1:{closed_port}", "hc1") as client:
        with pytest.raises(RelayConnectionError):
            client.connect(timeout=5)


# ---------------------------------------------------------------- proxies


def test_explicit_proxy_carries_http_and_websocket(
    scripted: ScriptedServer, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # an explicit proxy is used regardless
    scripted.answer(404, "Not Found TrackingId:x")
    with make_client(scripted, proxy=proxy.url) as client:
        with pytest.raises(EndpointNotFoundError):
            client.request("GET", "/via-proxy")
        with pytest.raises(EndpointNotFoundError):
            client.connect(timeout=10)
    port = scripted.server_address[1]
    assert proxy.seen == [f"GET {scripted.base}/hc1/via-proxy", f"CONNECT 127.0.0.1:{port}"]
    assert len(scripted.requests) == 2


def test_environment_proxy_and_no_proxy(
    scripted: ScriptedServer, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.answer(200, "OK", {"Via": "1.1 relay"})
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    with make_client(scripted) as client:
        client.request("GET", "/env")
        scripted.answer(404, "Not Found TrackingId:x")
        with pytest.raises(EndpointNotFoundError):
            client.connect(timeout=10)
    assert len(proxy.seen) == 2 and proxy.connects
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    scripted.answer(200, "OK", {"Via": "1.1 relay"})
    with make_client(scripted) as client:
        client.request("GET", "/direct")
    assert len(proxy.seen) == 2  # bypassed
    assert len(scripted.requests) == 3


def test_unreachable_proxy_is_a_connection_error(scripted: ScriptedServer, closed_port: int) -> None:
    with make_client(scripted, proxy=f"http://127.0.0.1:{closed_port}") as client:
        with pytest.raises(RelayConnectionError):
            client.request("GET", "/x")
        with pytest.raises(RelayConnectionError):
            client.connect(timeout=5)
    assert scripted.requests == []
