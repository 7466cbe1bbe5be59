"""HybridConnectionClient through the relay emulator: real sockets end to end.

The listening side is ``tests.support.tiny_listener.TinyListener``, written straight on
the protocol, so these tests exercise the sender against the protocol rather
than against our own listener.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import parse_qsl, urlsplit

import pytest

from hybridconn import (
    AuthenticationError,
    AuthorizationError,
    ConnectionClosed,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HybridConnectionClient,
    ListenerUnavailableError,
    RelayConnectionError,
    RelayTimeoutError,
    SharedAccessKeyTokenProvider,
)
from hybridconn.addresses import parse_address
from hybridconn.emulator import RelayEmulator
from hybridconn.protocol import Request
from tests.support.proxy import ConnectProxy
from tests.support.tiny_listener import TinyListener

KEYS = {
    "root": ("cm9vdC1rZXktZm9yLXRoZS1jbGllbnQtdGVzdHM=", {"Listen", "Send", "Manage"}),
    "listen": ("bGlzdGVuLWtleS1mb3ItdGhlLWNsaWVudC10ZXN0cw==", {"Listen"}),
    "send": ("c2VuZC1rZXktZm9yLXRoZS1jbGllbnQtdGVzdHM=", {"Send"}),
}
MB = 1024 * 1024


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "keys": KEYS}


def listen(relay: RelayEmulator, path: str = "hc1", **options: object) -> TinyListener:
    verify = options.pop("verify", getattr(relay, "certificate_path", None) or True)
    return TinyListener(relay.namespace, path, "listen", KEYS["listen"][0], verify=verify, **options)  # type: ignore[arg-type]


def sender(
    relay: RelayEmulator, key_name: str = "send", path: str = "hc1", **options: object
) -> HybridConnectionClient:
    return HybridConnectionClient.from_connection_string(relay.connection_string(path, key_name=key_name), **options)


@pytest.fixture
def listener(relay: RelayEmulator) -> Iterator[TinyListener]:
    with listen(relay) as running:
        yield running


@pytest.fixture
def client(relay: RelayEmulator) -> Iterator[HybridConnectionClient]:
    with sender(relay) as running:
        yield running


# ---------------------------------------------------------------- WebSocket echo


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 65537, MB])
def test_echo_text_and_binary(listener: TinyListener, client: HybridConnectionClient, size: int) -> None:
    text = ("héllo wörld " * (size // 12 + 1))[:size]
    binary = os.urandom(size)
    with client.connect(timeout=10) as conn:
        conn.send(text)
        assert conn.recv(timeout=30) == text
        conn.send(binary)
        assert conn.recv(timeout=30) == binary


def test_ten_thousand_small_messages_arrive_in_order(listener: TinyListener, client: HybridConnectionClient) -> None:
    count = 10_000
    with client.connect(timeout=10) as conn:
        errors: List[BaseException] = []

        def send_all() -> None:
            try:
                for i in range(count):
                    conn.send(f"message {i}" if i % 2 else f"message {i}".encode())
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        writer = threading.Thread(target=send_all, name="test-sender-writer")
        writer.start()
        received = [conn.recv(timeout=30) for _ in range(count)]
        writer.join(30)
    assert not errors
    assert received == [f"message {i}" if i % 2 else f"message {i}".encode() for i in range(count)]


def test_close_code_and_reason_from_the_sender(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    with listen(relay, on_connection=None) as listener:
        conn = client.connect(timeout=10)
        accepted = listener.seen.connections.get(timeout=10)
        conn.close(4001, "sender says bye", timeout=5)
        with pytest.raises(ConnectionClosed) as closed:
            accepted.recv(timeout=10)
    assert (closed.value.code, closed.value.reason) == (4001, "sender says bye")
    assert (conn.close_code, conn.close_reason) == (4001, "sender says bye")


def test_close_code_and_reason_from_the_listener(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    with listen(relay, on_connection=None) as listener:
        with client.connect(timeout=10) as conn:
            accepted = listener.seen.connections.get(timeout=10)
            accepted.close(4002, "listener is done", timeout=5)
            with pytest.raises(ConnectionClosed) as closed:
                conn.recv(timeout=10)
    assert (closed.value.code, closed.value.reason) == (4002, "listener is done")
    assert conn.close_code == 4002


def test_subprotocol_is_negotiated(listener: TinyListener, client: HybridConnectionClient) -> None:
    with client.connect(subprotocols=["chat.v2", "json"], timeout=10) as conn:
        assert conn.subprotocol == "chat.v2"
        conn.send("hi")
        assert conn.recv(timeout=10) == "hi"


def test_listener_that_picks_no_subprotocol(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    with listen(relay, pick_subprotocol=False):
        with client.connect(subprotocols=["chat.v2"], timeout=10) as conn:
            assert conn.subprotocol is None
            conn.send("still fine")
            assert conn.recv(timeout=10) == "still fine"


def test_listener_sees_headers_suffix_query_and_id(listener: TinyListener, client: HybridConnectionClient) -> None:
    with client.connect(
        headers={"X-App-Version": "7"}, suffix="/rooms/blue", query={"user": "ana"}, id="trace-123", timeout=10
    ) as conn:
        conn.send("x")
        assert conn.recv(timeout=10) == "x"
        assert (conn.id, conn.path, conn.query) == ("trace-123", "/rooms/blue", "user=ana")
    accept = listener.seen.accepts[0]
    headers = {k.lower(): v for k, v in accept.connect_headers.items()}
    assert headers["x-app-version"] == "7"
    assert "servicebusauthorization" not in headers
    assert accept.id.startswith("trace-123")
    address = parse_address(accept.address, "hc1")
    assert (address.suffix, address.query) == ("/rooms/blue", "user=ana")


def test_token_in_query_for_websockets(relay: RelayEmulator, listener: TinyListener) -> None:
    with sender(relay, token_in_query=True) as client:
        with client.connect(suffix="s?app=1", timeout=10) as conn:
            conn.send(b"q")
            assert conn.recv(timeout=10) == b"q"
    address = parse_address(listener.seen.accepts[0].address, "hc1")
    assert address.query == "app=1"
    assert "sb-hc-token" not in listener.seen.accepts[0].address


# ---------------------------------------------------------------- errors


def test_no_listener(client: HybridConnectionClient) -> None:
    with pytest.raises(EndpointNotFoundError) as ws_error:
        client.connect(timeout=10)
    with pytest.raises(ListenerUnavailableError) as http_error:
        client.request("GET", "/x")
    for error in (ws_error.value, http_error.value):
        assert error.tracking_id  # type: ignore[attr-defined]
    # The WebSocket's 404 "There are no listeners connected" is a "no listener" error too (issue 14).
    assert isinstance(ws_error.value, ListenerUnavailableError)


def test_unknown_hybrid_connection(relay: RelayEmulator) -> None:
    with HybridConnectionClient(relay.namespace, "nope", _provider("send")) as client:
        with pytest.raises(EndpointNotFoundError) as ws_error:
            client.connect(timeout=10)
        with pytest.raises(EndpointNotFoundError) as http_error:
            client.request("GET")
    assert ws_error.value.status_code == http_error.value.status_code == 404
    assert not isinstance(ws_error.value, ListenerUnavailableError)
    assert not isinstance(http_error.value, ListenerUnavailableError)


def test_wrong_key_is_an_authentication_error(relay: RelayEmulator, listener: TinyListener) -> None:
    with HybridConnectionClient(relay.namespace, "hc1", SharedAccessKeyTokenProvider("send", "d3Jvbmc=")) as client:
        with pytest.raises(AuthenticationError) as ws_error:
            client.connect(timeout=10)
        with pytest.raises(AuthenticationError) as http_error:
            client.request("POST", data=b"x")
    assert ws_error.value.status_code == http_error.value.status_code == 401
    assert ws_error.value.tracking_id and http_error.value.tracking_id
    assert listener.seen.accepts == [] and listener.seen.requests == []


def test_missing_token_is_an_authentication_error(relay: RelayEmulator, listener: TinyListener) -> None:
    with HybridConnectionClient(relay.namespace, "hc1") as client:
        with pytest.raises(AuthenticationError):
            client.connect(timeout=10)
        with pytest.raises(AuthenticationError):
            client.request("GET")


def test_listen_only_key_cannot_send(relay: RelayEmulator, listener: TinyListener) -> None:
    with sender(relay, key_name="listen") as client:
        with pytest.raises(AuthorizationError) as ws_error:
            client.connect(timeout=10)
        with pytest.raises(AuthorizationError) as http_error:
            client.request("GET")
    assert ws_error.value.status_code == http_error.value.status_code == 403


@pytest.mark.parametrize(
    "status, description", [(451, "not in this country"), (404, "no such room"), (400, "bad room")]
)
def test_listener_reject_carries_its_status_and_description(
    relay: RelayEmulator, client: HybridConnectionClient, status: int, description: str
) -> None:
    with listen(relay, on_accept=lambda accept: (status, description)):
        with pytest.raises(ConnectionRejectedError) as caught:
            client.connect(timeout=10)
    assert (caught.value.status_code, caught.value.reason) == (status, description)


def test_listener_that_never_accepts_times_out(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    release = threading.Event()

    def stall(accept: object) -> bool:
        release.wait(30)
        return False

    with listen(relay, on_accept=stall):
        try:
            with pytest.raises(RelayTimeoutError):
                client.connect(timeout=1)
        finally:
            release.set()


def test_listener_that_never_answers_times_out(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    release = threading.Event()

    def stall(request: Request, body: bytes) -> Tuple[int, dict, bytes]:
        release.wait(30)
        return 200, {}, b""

    with listen(relay, on_request=stall):
        try:
            with pytest.raises(RelayTimeoutError):
                client.request("GET", "/slow", timeout=1)
        finally:
            release.set()


def test_relay_gives_up_on_a_slow_listener() -> None:
    """The relay's own deadlines: its 504 for HTTP, its refusal after the accept window for connect."""
    release = threading.Event()

    def stall_accept(accept: object) -> bool:
        release.wait(30)
        return False

    def stall_request(request: Request, body: bytes) -> Tuple[int, dict, bytes]:
        release.wait(30)
        return 200, {}, b""

    with RelayEmulator(hybrid_connections=("hc1",), keys=KEYS, response_timeout=1, accept_timeout=1) as relay:
        with listen(relay, on_accept=stall_accept, on_request=stall_request), sender(relay) as client:
            try:
                with pytest.raises(RelayTimeoutError) as http_error:
                    client.request("GET", "/slow", timeout=30)
                with pytest.raises(RelayTimeoutError) as ws_error:
                    client.connect(timeout=30)
            finally:
                release.set()
    assert http_error.value.status_code == 504 and http_error.value.tracking_id  # type: ignore[attr-defined]
    assert ws_error.value.tracking_id  # type: ignore[attr-defined]


def test_anonymous_sender_on_an_open_hybrid_connection(relay: RelayEmulator) -> None:
    relay.add_hybrid_connection("open", requires_client_authorization=False)
    with listen(relay, "open"), HybridConnectionClient(relay.namespace, "open") as client:
        assert client.request("POST", "/a", data=b"anon").content == b"anon"
        with client.connect(timeout=10) as conn:
            conn.send("anon")
            assert conn.recv(timeout=10) == "anon"


# ---------------------------------------------------------------- HTTP


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
def test_http_methods_with_bodies_and_headers(
    listener: TinyListener, client: HybridConnectionClient, method: str
) -> None:
    body = b"" if method in ("GET", "HEAD") else f"{method} body".encode()
    response = client.request(method, "/items/7?view=full", data=body or None, headers={"X-Custom": "yes"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["X-Method"] == method
    assert response.headers["X-Target"] == "/hc1/items/7?view=full"
    assert "Via" in response.headers
    assert response.content == (b"" if method == "HEAD" else body)
    request, received = listener.seen.requests[0]
    assert (request.method, received) == (method, body)
    assert {k.lower(): v for k, v in request.request_headers.items()}["x-custom"] == "yes"


def test_relay_query_and_token_never_reach_the_listener(relay: RelayEmulator, listener: TinyListener) -> None:
    with sender(relay, token_in_query=True) as client:
        assert client.request("GET", "/q?keep=1", params={"also": "2"}).status_code == 200
    request, _ = listener.seen.requests[0]
    target = request.request_target or ""
    assert "sb-hc-" not in target.lower()
    assert dict(parse_qsl(urlsplit(target).query)) == {"keep": "1", "also": "2"}
    headers = {k.lower() for k in request.request_headers}
    assert "servicebusauthorization" not in headers and "authorization" not in headers


def test_listener_statuses_come_back_untouched(relay: RelayEmulator, client: HybridConnectionClient) -> None:
    answers = {"/401": 401, "/404": 404, "/503": 503, "/418": 418}

    def respond(request: Request, body: bytes) -> Tuple[int, dict, bytes]:
        status = answers[urlsplit(request.request_target or "").path[len("/hc1") :]]
        return status, {"Content-Type": "text/plain"}, b"from the listener"

    with listen(relay, on_request=respond):
        for suffix, status in answers.items():
            response = client.request("GET", suffix)
            assert (response.status_code, response.content) == (status, b"from the listener")


def test_five_megabytes_up_and_down_byte_exact(listener: TinyListener, client: HybridConnectionClient) -> None:
    payload = os.urandom(5 * MB)
    response = client.request("POST", "/upload", data=payload, timeout=60)
    assert response.status_code == 200
    assert response.headers["X-Body-Length"] == str(len(payload))
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(payload).hexdigest()
    _, received = listener.seen.requests[0]
    assert received == payload


def test_session_for_plain_requests_code(listener: TinyListener, client: HybridConnectionClient) -> None:
    session = client.session()
    response = session.put(client.http_url("/plain"), data=b"p", timeout=30)
    assert (response.status_code, response.content) == (200, b"p")


# ---------------------------------------------------------------- proxy and TLS


def test_websocket_and_http_through_a_connect_proxy(listener: TinyListener, relay: RelayEmulator) -> None:
    with ConnectProxy() as proxy, sender(relay, proxy=proxy.url) as client:
        with client.connect(timeout=10) as conn:
            conn.send("through the proxy")
            assert conn.recv(timeout=10) == "through the proxy"
        assert client.request("POST", "/p", data=b"proxied").content == b"proxied"
        port = urlsplit(relay.namespace).port
        assert f"CONNECT 127.0.0.1:{port}" in proxy.seen
        assert any(line.startswith("POST http://127.0.0.1") for line in proxy.seen)


@pytest.fixture
def tls_relay() -> Iterator[RelayEmulator]:
    with RelayEmulator(hybrid_connections=("hc1",), keys=KEYS, tls="self-signed") as emulator:
        yield emulator


def test_tls_with_the_emulator_certificate(tls_relay: RelayEmulator) -> None:
    ca = tls_relay.certificate_path
    with listen(tls_relay, verify=ca), sender(tls_relay, verify=ca) as client:
        assert client.http_url().startswith("https://")
        with client.connect(timeout=10) as conn:
            conn.send(b"secure")
            assert conn.recv(timeout=10) == b"secure"
        assert client.request("POST", "/s", data=b"tls").content == b"tls"


def test_tls_through_a_connect_proxy(tls_relay: RelayEmulator) -> None:
    ca = tls_relay.certificate_path
    with listen(tls_relay, verify=ca), ConnectProxy() as proxy, sender(tls_relay, verify=ca, proxy=proxy.url) as client:
        with client.connect(timeout=10) as conn:
            conn.send("both")
            assert conn.recv(timeout=10) == "both"
        assert client.request("GET", "/g").status_code == 200
    assert len(proxy.connects) == 2  # HTTPS tunnels through CONNECT too


def test_tls_without_the_ca_fails_clearly(tls_relay: RelayEmulator) -> None:
    with sender(tls_relay) as client:
        with pytest.raises(RelayConnectionError, match="verification") as ws_error:
            client.connect(timeout=10)
        with pytest.raises(RelayConnectionError, match="verification") as http_error:
            client.request("GET")
    for error in (ws_error.value, http_error.value):
        assert "verify=" in str(error)


def _provider(key_name: str) -> SharedAccessKeyTokenProvider:
    return SharedAccessKeyTokenProvider(key_name, KEYS[key_name][0])



def test_a_refusal_with_only_a_standard_phrase_names_the_body_text() -> None:
    """The emulator's per-client cap answers ``503 Service Unavailable`` with its reason in the body
    (as proxies and load balancers do); the error carries that text, not just the bare phrase."""
    import socket

    from hybridconn import HybridConnectionError
    from hybridconn.emulator import ClientLimits

    limits = ClientLimits(max_connections_per_client=1)
    with RelayEmulator(hybrid_connections=("hc1",), keys=KEYS, limits=limits) as relay:
        host, port = relay.bound_address.rsplit(":", 1)
        # The first connection from 127.0.0.1 takes the cap; the sender's handshake is the one over it.
        with socket.create_connection((host, int(port)), timeout=10), sender(relay) as client:
            with pytest.raises(HybridConnectionError) as error:
                client.connect(timeout=30)
            assert relay.refused_connections == 1
    text = str(error.value)
    assert "503" in text and "Too many connections from this client" in text, text
    assert getattr(error.value, "status_code", None) == 503
