"""The emulator's Entra ID check, through hybridconn's listener and client and through plain clients:
roles per namespace and hybrid connection (403), bad tokens (401), where a token may travel,
local authentication disabled, and expiry and renewal on an open control channel (1008)."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from hybridconn import AuthenticationError, AuthorizationError, RelayedResponse
from hybridconn.auth import RELAY_SCOPE
from hybridconn.emulator import DevCredential, RelayEmulator, mint_token
from tests.support.endpoints import StatusLog, echo_connection, ok
from tests.support.plain_clients import Control, hc_url, open_ws, read_close, refused, shut, status_message, token

Make = Callable[..., Any]


def http(relay: RelayEmulator, path: str = "hc1", **headers: str) -> requests.Response:
    return requests.post(f"{relay.http_base}/{path}/x", data=b"hi", headers=headers, timeout=15)


def jwt(principal: str = "owner-app", **options: Any) -> str:
    return mint_token(principal, **options)[0]


def test_owner_listens_and_sends_http_and_websocket(make_listener: Make, make_client: Make) -> None:
    listener = make_listener(credential=DevCredential("owner-app"))
    listener.on_request = ok
    listener.on_connection(echo_connection)
    client = make_client(credential=DevCredential("owner-app"))
    assert client.request("POST", "/a", data=b"entra", timeout=15).content == b"ok:entra"
    with client.connect(timeout=15) as conn:
        conn.send("ping")
        assert conn.recv(timeout=10) == "ping"


def test_roles_per_hybrid_connection_and_namespace(
    make_listener: Make, make_client: Make, relay: RelayEmulator
) -> None:
    on_hc1 = make_listener("hc1", credential=DevCredential("listener-app"))
    on_hc1.on_request = ok
    with pytest.raises(AuthorizationError) as info:
        make_listener("hc2", credential=DevCredential("listener-app"))  # Listener on hc1 only
    assert info.value.status_code == 403 and "'Listen' claim(s) are required" in info.value.reason
    make_listener("hc2", credential=DevCredential("ns-listener"))  # Listener on the namespace
    sender = make_client("hc1", credential=DevCredential("sender-app"))
    assert sender.request("POST", "/", data=b"1", timeout=15).status_code == 200
    assert http(relay, "hc2", ServiceBusAuthorization=jwt("sender-app")).status_code == 403  # Sender on hc1 only


def test_a_sender_cannot_listen_and_a_listener_cannot_send(make_listener: Make, make_client: Make,
                                                           relay: RelayEmulator) -> None:
    with pytest.raises(AuthorizationError, match="holds Azure Relay Sender on 'hc1'"):
        make_listener(credential=DevCredential("sender-app"))
    with pytest.raises(AuthorizationError, match="holds no Azure Relay role"):
        make_listener(credential=DevCredential("nobody"))
    make_listener(credential=DevCredential("listener-app")).on_request = ok
    assert http(relay, ServiceBusAuthorization=jwt("listener-app")).status_code == 403
    with pytest.raises(AuthorizationError):
        make_client(credential=DevCredential("listener-app")).connect(timeout=15)


BAD_TOKENS = {
    "wrong audience": dict(audience="https://storage.azure.com/"),
    "expired": dict(lifetime=-60),
    "bad signature": dict(signing_key=ec.generate_private_key(ec.SECP256R1())),
    "unknown issuer": dict(issuer="https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"),
    "not yet valid": dict(not_before=time.time() + 600),
}
REASONS = {"wrong audience": "audience 'https://storage.azure.com/' is not https://relay.azure.net/",
           "expired": "the token has expired", "bad signature": "invalid signature",
           "unknown issuer": "is not trusted", "not yet valid": "not valid yet"}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused_with_401_everywhere(case: str, relay: RelayEmulator, make_listener: Make) -> None:
    bad = jwt(**BAD_TOKENS[case])
    error = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {bad}"])
    assert error.status_code == 401 and REASONS[case] in status_message(error)
    make_listener(credential=DevCredential("owner-app")).on_request = ok
    assert refused(hc_url(relay, "hc1", "connect"), [f"ServiceBusAuthorization: {bad}"]).status_code == 401
    response = http(relay, ServiceBusAuthorization=bad)
    assert response.status_code == 401 and REASONS[case] in response.reason


def test_bad_tokens_from_a_credential_give_authentication_errors(make_listener: Make) -> None:
    with pytest.raises(AuthenticationError, match="audience") as info:
        make_listener(credential=DevCredential("owner-app", audience="https://vault.azure.net"))
    assert info.value.status_code == 401
    with pytest.raises(AuthenticationError, match="expired"):
        make_listener(credential=DevCredential("owner-app", lifetime=-5))


def test_a_credential_asked_for_another_scope_is_refused(make_listener: Make) -> None:
    from hybridconn.auth import EntraTokenProvider

    wrong_scope = EntraTokenProvider(DevCredential("owner-app"), scope="https://management.azure.com/.default")
    with pytest.raises(AuthenticationError, match="audience 'https://management.azure.com'"):
        make_listener(token_provider=wrong_scope)
    # azbridge asks for https://relay.azure.net/.default (one slash): also Azure Relay's resource.
    make_listener(token_provider=EntraTokenProvider(DevCredential("owner-app"), scope="https://relay.azure.net/.default"))


def test_where_a_token_may_travel(relay: RelayEmulator, make_listener: Make, make_client: Make) -> None:
    listener = make_listener(credential=DevCredential("owner-app"), token_in_query=True)  # sb-hc-token
    listener.on_request = ok
    good = jwt("sender-app")
    assert http(relay, ServiceBusAuthorization=good).status_code == 200
    assert http(relay, ServiceBusAuthorization=f"Bearer {good}").status_code == 200
    assert http(relay, Authorization=f"Bearer {good}").status_code == 200
    assert requests.get(f"{relay.http_base}/hc1/x?sb-hc-token={good}", timeout=15).status_code == 200
    assert make_client(credential=DevCredential("sender-app"), token_in_query=True).request(
        "GET", "/", timeout=15).status_code == 200


def test_local_auth_disabled_refuses_sas_and_takes_entra() -> None:
    with RelayEmulator(hybrid_connections=["hc1"], local_auth=False) as relay:
        from hybridconn import HybridConnectionListener

        cs = relay.connection_string("hc1")
        assert "SharedAccessKey" not in cs
        error = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {token(relay)}"])
        assert error.status_code == 401 and "Local authentication (SAS) is disabled" in status_message(error)
        with HybridConnectionListener.from_connection_string(cs, credential=relay.credential()) as listener:
            listener.on_request = ok
            assert http(relay, ServiceBusAuthorization=jwt(relay.credential().principal_id)).status_code == 200


def test_an_entra_token_expiring_on_an_open_control_channel_closes_it_with_1008(relay: RelayEmulator) -> None:
    channel = Control(relay, tok=jwt(lifetime=2))
    try:
        code, reason = read_close(channel.ws)
        assert code == 1008 and "expired" in reason
    finally:
        channel.close()


def test_renew_token_with_an_entra_token_keeps_the_channel(relay: RelayEmulator) -> None:
    channel = Control(relay, tok=jwt(lifetime=2))
    try:
        channel.ws.send(json.dumps({"renewToken": {"token": jwt(lifetime=300)}}))
        time.sleep(3)  # past the first token's expiry: the channel must still be open
        response: Any = {}
        import threading

        call = threading.Thread(
            target=lambda: response.update(r=http(relay, ServiceBusAuthorization=jwt("sender-app")))
        )
        call.start()
        request, _ = channel.recv_request()
        channel.respond(request["id"], 200)
        call.join(15)
        assert response["r"].status_code == 200
        channel.ws.send(json.dumps({"renewToken": {"token": jwt("sender-app", lifetime=300)}}))  # no Listen right
        code, _ = read_close(channel.ws)
        assert code == 1008
    finally:
        channel.close()


def test_a_revoked_role_applies_to_the_next_handshake(relay: RelayEmulator, make_listener: Make) -> None:
    make_listener(credential=DevCredential("listener-app"))
    assert relay.role_assignments.revoke("listener-app") == 1
    with pytest.raises(AuthorizationError):
        make_listener(credential=DevCredential("listener-app"))
    relay.role_assignments.assign("listener-app", "Listener", "hc1")
    make_listener(credential=DevCredential("listener-app"))


def test_the_listener_renews_entra_tokens_without_a_drop(make_listener: Make, make_client: Make) -> None:
    credential = DevCredential("owner-app", lifetime=10)
    listener = make_listener(open=False, credential=credential)
    listener.on_request = lambda req: RelayedResponse(body=req.body)
    events = StatusLog(listener)
    listener.open(timeout=15)
    client = make_client(credential=DevCredential("sender-app"))
    deadline = time.monotonic() + 16
    count = 0
    while time.monotonic() < deadline:
        assert client.request("POST", "/", data=str(count).encode(), timeout=15).content == str(count).encode()
        count += 1
    assert events.offline_errors == [] and listener.stats["connects"] == 1
    assert listener.stats["renewals"] >= 2 and credential.calls >= 3
    assert credential.scopes == [RELAY_SCOPE]


def test_a_raw_websocket_sender_with_an_entra_token(relay: RelayEmulator, make_listener: Make) -> None:
    listener = make_listener(credential=DevCredential("owner-app"))
    listener.on_connection(echo_connection)
    ws = open_ws(hc_url(relay, "hc1", "connect"), [f"ServiceBusAuthorization: {jwt('sender-app')}"])
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
    finally:
        shut(ws)


def test_without_pyjwt_the_emulator_refuses_entra_tokens_and_says_why(relay: RelayEmulator,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    good = jwt()
    import sys

    monkeypatch.setitem(sys.modules, "jwt", None)  # as if hybridconn[emulator] were not installed
    error = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {good}"])
    assert error.status_code == 401 and 'pip install "hybridconn[emulator]"' in status_message(error)
    listener_sas = Control(relay)  # SAS needs neither PyJWT nor cryptography
    listener_sas.close()


class StuckCredential:
    """Hands out one token again and again, as a credential whose cache never refreshes would."""

    def __init__(self, token: str, expires_on: int) -> None:
        self.token, self.expires_on = token, expires_on

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self


def test_a_listener_whose_token_is_not_renewed_is_closed_with_1008(make_listener: Make) -> None:
    token, expires_on = mint_token("owner-app", lifetime=3)
    listener = make_listener(open=False, credential=StuckCredential(token, expires_on), backoff=(30,))
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.offline.wait(20)
    error = events.offline_errors[0]
    assert isinstance(error, AuthenticationError) and "1008" in str(error) and "expired" in str(error)
    assert listener.stats["renewals"] == 0
