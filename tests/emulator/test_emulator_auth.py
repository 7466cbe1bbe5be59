"""Authorization: token sources, 401/403/404 with tracking ids, audiences, rights, stripping."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests

from hybridconn.auth import generate_sas_token
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, refused, shut, status_message, token

KEYS = {
    "listen-only": ("listen-key", {"Listen"}),
    "send-only": ("send-key", {"Send"}),
    "root": "root-key",  # a bare key has every right
}


@pytest.fixture
def keyed() -> RelayEmulator:  # type: ignore[misc]
    with RelayEmulator(keys=KEYS) as relay:
        yield relay


def _listen_status(relay: RelayEmulator, tok: str) -> int:
    exc = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {tok}"])
    assert "TrackingId:" in status_message(exc)
    return exc.status_code


def test_listen_refusals(relay: RelayEmulator) -> None:
    assert refused(hc_url(relay, "hc1", "listen")).status_code == 401  # no token
    assert _listen_status(relay, "SharedAccessSignature garbage") == 401
    assert _listen_status(relay, token(relay, key="wrong key")) == 401
    assert _listen_status(relay, token(relay, key_name="NoSuchRule")) == 401
    expired = generate_sas_token(f"http://127.0.0.1:{relay.port}/hc1", DEFAULT_KEY_NAME, DEFAULT_KEY, ttl=-10)
    assert _listen_status(relay, expired) == 401
    assert _listen_status(relay, token(relay, "other")) == 401  # signed for another path
    exc = refused(hc_url(relay, "nope", "listen"), [f"ServiceBusAuthorization: {token(relay, 'nope')}"])
    assert exc.status_code == 404 and "TrackingId:" in status_message(exc)


def test_rights_are_enforced(keyed: RelayEmulator) -> None:
    listen_tok = token(keyed, key_name="listen-only", key="listen-key")
    send_tok = token(keyed, key_name="send-only", key="send-key")
    assert _listen_status(keyed, send_tok) == 403
    channel = Control(keyed, tok=listen_tok)
    try:
        exc = refused(hc_url(keyed, "hc1", "connect"), [f"ServiceBusAuthorization: {listen_tok}"])
        assert exc.status_code == 403
        response = requests.get(f"{keyed.http_base}/hc1", headers={"ServiceBusAuthorization": listen_tok}, timeout=10)
        assert response.status_code == 403 and "TrackingId:" in response.text
        call = BackgroundCall(
            requests.get, f"{keyed.http_base}/hc1", headers={"ServiceBusAuthorization": send_tok}, timeout=10
        )
        request, _ = channel.recv_request()
        channel.respond(request["id"], 200)
        assert call.join().status_code == 200
    finally:
        channel.close()
    assert "root" in keyed.connection_string()


@pytest.mark.parametrize(
    "resource",
    [
        "http://127.0.0.1:{port}/hc1",
        "http://localhost:{port}/hc1",
        "sb://127.0.0.1:{port}/hc1",
        "https://127.0.0.1:{port}/hc1/",
        "http://127.0.0.1:{port}/",  # namespace-scoped
        "http://127.0.0.1:{port}/$hc/hc1",
    ],
)
def test_audience_forms_are_accepted(relay: RelayEmulator, resource: str) -> None:
    tok = generate_sas_token(resource.format(port=relay.port), DEFAULT_KEY_NAME, DEFAULT_KEY, 300)
    channel = Control(relay, tok=tok)
    channel.close()


def test_audience_never_matches_the_host_header(relay: RelayEmulator) -> None:
    """A token signed for another namespace is refused even when the client's ``Host`` names it
    (issue 15: the client controls that header); the namespace names are configured instead."""
    tok = generate_sas_token("http://contoso.servicebus.windows.net:443/hc1", DEFAULT_KEY_NAME, DEFAULT_KEY, 300)
    exc = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {tok}"],
                  host="contoso.servicebus.windows.net")
    assert exc.status_code == 401
    assert _listen_status(relay, tok) == 401
    with RelayEmulator(hostnames=["contoso.servicebus.windows.net:443"]) as named:
        shut(open_ws(hc_url(named, "hc1", "listen"), [f"ServiceBusAuthorization: {tok}"]))


def test_token_sources_and_precedence(relay: RelayEmulator, control: Control) -> None:
    good = token(relay)
    # query token
    shut(open_ws(hc_url(relay, "hc1", "listen", f"sb-hc-token={quote(good, safe='')}")))
    # Authorization header when nothing else is present
    shut(open_ws(hc_url(relay, "hc1", "listen"), [f"Authorization: {good}"]))
    # the query wins over the header
    exc = refused(hc_url(relay, "hc1", "listen", "sb-hc-token=bogus"), [f"ServiceBusAuthorization: {good}"])
    assert exc.status_code == 401
    # Authorization is ignored (and forwarded) when ServiceBusAuthorization is present
    call = BackgroundCall(
        requests.get,
        f"{relay.http_base}/hc1",
        headers={"ServiceBusAuthorization": good, "Authorization": "Bearer app-token"},
        timeout=10,
    )
    request, _ = control.recv_request()
    headers = {k.lower(): v for k, v in request["requestHeaders"].items()}
    assert headers["authorization"] == "Bearer app-token" and "servicebusauthorization" not in headers
    control.respond(request["id"], 200)
    assert call.join().status_code == 200
    # an evaluated Authorization header is stripped
    call = BackgroundCall(
        requests.get, f"{relay.http_base}/hc1?sb-hc-token=x&a=1", headers={"Authorization": good}, timeout=10
    )
    assert call.join().status_code == 401  # the (bad) query token took precedence
    call = BackgroundCall(requests.get, f"{relay.http_base}/hc1?a=1", headers={"Authorization": good}, timeout=10)
    request, _ = control.recv_request()
    assert "authorization" not in {k.lower() for k in request["requestHeaders"]}
    assert request["requestTarget"] == "/hc1?a=1"
    control.respond(request["id"], 200)
    assert call.join().status_code == 200


def test_anonymous_senders(relay: RelayEmulator) -> None:
    relay.add_hybrid_connection("open", requires_client_authorization=False)
    channel = Control(relay, "open")
    try:
        call = BackgroundCall(
            requests.get, f"{relay.http_base}/open/x", headers={"Authorization": "Bearer app"}, timeout=10
        )
        request, _ = channel.recv_request()
        assert request["requestHeaders"].get("Authorization") == "Bearer app"  # passed on as is
        channel.respond(request["id"], 200)
        assert call.join().status_code == 200
        # listening still needs a token
        assert refused(hc_url(relay, "open", "listen")).status_code == 401
    finally:
        channel.close()


def test_control_channel_is_closed_with_1008_when_its_token_expires(relay: RelayEmulator) -> None:
    short = token(relay, ttl=2)
    channel = Control(relay, tok=short)
    try:
        opcode, payload = channel.recv_frame(timeout=15)
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1008 and b"TrackingId:" in payload
    finally:
        channel.close()


def test_renew_token_extends_the_channel_and_a_bad_one_closes_it(relay: RelayEmulator) -> None:
    channel = Control(relay, tok=token(relay, ttl=2))
    try:
        channel.ws.send('{"renewToken":{"token":"%s"}}' % token(relay, ttl=300))
        time.sleep(3)  # past the first token's expiry: the channel must still be open
        call = BackgroundCall(
            requests.get, f"{relay.http_base}/hc1", headers={"ServiceBusAuthorization": token(relay)}, timeout=10
        )
        request, _ = channel.recv_request()
        channel.respond(request["id"], 200)
        assert call.join().status_code == 200
        channel.ws.send('{"renewToken":{"token":"%s"}}' % token(relay, key="wrong"))
        opcode, payload = channel.recv_frame(timeout=10)
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1008
    finally:
        channel.close()
