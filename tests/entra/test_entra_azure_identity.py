"""azure-identity's own credential classes, offline, through the emulator: managed identity as on
App Service (Authentication=Managed Identity, DefaultAzureCredential, a user-assigned identity by
AZURE_CLIENT_ID), a client secret and workload identity against the development identity
endpoint, AzureCliCredential with a stand-in ``az``; renewal under 10-second tokens."""

from __future__ import annotations

import logging
import os
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from azure.identity import (
    AzureCliCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from hybridconn import AuthenticationError, AuthorizationError, RelayedResponse
from hybridconn._entra import jwt_claims
from hybridconn.emulator import RelayEmulator, mint_token
from hybridconn.emulator.identity import DevIdentityEndpoint
from tests.entra.conftest import CLIENT_SECRET
from tests.support.endpoints import StatusLog, echo_connection, ok

Make = Callable[..., Any]


def managed_identity_cs(relay: RelayEmulator, path: str = "hc1") -> str:
    return relay.connection_string(path, entra=True) + ";Authentication=Managed Identity"


def secret_credential(identity: DevIdentityEndpoint, secret: str = CLIENT_SECRET) -> ClientSecretCredential:
    return ClientSecretCredential(identity.tenant_id, "secret-app", secret, authority=identity.authority,
                                  disable_instance_discovery=True, connection_verify=identity.certificate_path)


def test_app_service_managed_identity_from_the_connection_string_alone(
        app_service: DevIdentityEndpoint, relay: RelayEmulator, make_listener: Make, make_client: Make) -> None:
    # The App Service case: no key, no secret anywhere; the identity endpoint is the platform's.
    listener = make_listener(connection_string=managed_identity_cs(relay))
    listener.on_request = ok
    listener.on_connection(echo_connection)
    assert type(listener.token_provider.credential).__name__ == "ManagedIdentityCredential"
    client = make_client(credential=ManagedIdentityCredential())
    assert client.request("PUT", "/orders/1", data=b"mi", timeout=15).content == b"ok:mi"
    with client.connect(timeout=15) as conn:
        conn.send(b"\x00\x01")
        assert conn.recv(timeout=10) == b"\x00\x01"
    assert app_service.issued >= 2


def test_a_wsgi_app_on_app_service_serves_with_its_managed_identity(
        app_service: DevIdentityEndpoint, relay: RelayEmulator, make_listener: Make, make_client: Make) -> None:
    import flask

    from hybridconn import serve_wsgi

    app = flask.Flask("orders")
    app.add_url_rule("/orders/<int:number>", "order", lambda number: {"order": number, "by": flask.request.host})
    listener = make_listener(connection_string=managed_identity_cs(relay), open=False)
    serve_wsgi(app, listener)
    listener.open(timeout=15)
    response = make_client(credential=ManagedIdentityCredential()).request("GET", "/orders/7", timeout=15)
    assert response.status_code == 200 and response.json()["order"] == 7


def test_a_user_assigned_identity_by_azure_client_id(app_service: DevIdentityEndpoint, relay: RelayEmulator,
                                                     make_listener: Make, make_client: Make,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "uai-listener")  # Listener on hc1 only
    listener = make_listener(connection_string=managed_identity_cs(relay))
    listener.on_request = ok
    token, _ = listener.token_provider.get_token("")
    assert jwt_claims(token)["oid"] == "uai-listener"
    with pytest.raises(AuthorizationError, match="'Send' claim"):
        make_client(credential=ManagedIdentityCredential(client_id="uai-listener")).request("GET", "/", timeout=15)


def test_an_unknown_user_assigned_identity_is_a_clear_error(
    app_service: DevIdentityEndpoint, relay: RelayEmulator, make_listener: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "not-assigned-here")
    with pytest.raises(AuthenticationError) as info:
        make_listener(connection_string=managed_identity_cs(relay))
    assert "ManagedIdentityCredential could not get a token" in str(info.value)
    assert "No managed identity found for not-assigned-here" in str(info.value)


def test_default_azure_credential_finds_the_managed_identity(app_service: DevIdentityEndpoint, make_listener: Make,
                                                             make_client: Make) -> None:
    credential = DefaultAzureCredential(exclude_shared_token_cache_credential=True)
    listener = make_listener(credential=credential)
    listener.on_request = ok
    assert make_client(credential=credential).request("GET", "/", timeout=15).content == b"ok:"


def test_client_secret_credential(identity: DevIdentityEndpoint, make_listener: Make, make_client: Make) -> None:
    listener = make_listener(credential=secret_credential(identity))
    listener.on_request = ok
    assert (
        make_client(credential=secret_credential(identity)).request("POST", "/", data=b"cs", timeout=15).content
        == b"ok:cs"
    )


def test_a_wrong_client_secret_shows_no_secret_or_token(identity: DevIdentityEndpoint, make_listener: Make,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    wrong = "Zz9~wrong-secret-value"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthenticationError) as info:
            make_listener(credential=secret_credential(identity, wrong))
    assert "AADSTS7000215: Invalid client secret provided" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert wrong not in text and CLIENT_SECRET not in text


def test_workload_identity_as_on_aks(identity: DevIdentityEndpoint, make_listener: Make, make_client: Make,
                                     tmp_path: Path) -> None:
    # AKS projects a Kubernetes service account token into a file; azure-identity trades it for an Entra ID token.
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(mint_token("system:serviceaccount:shop:orders", audience="api://AzureADTokenExchange")[0])
    credential = WorkloadIdentityCredential(
        tenant_id=identity.tenant_id,
        client_id="aks-app",
        token_file_path=str(token_file),
        authority=identity.authority,
        disable_instance_discovery=True,
        connection_verify=identity.certificate_path,
    )
    listener = make_listener(credential=credential)
    listener.on_request = ok
    assert make_client(credential=credential).request("GET", "/", timeout=15).status_code == 200


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``az`` on PATH that answers ``az account get-access-token`` as a signed-in Azure CLI does,
    with a token of the development issuer for $FAKE_AZ_PRINCIPAL (or "Please run 'az login'")."""
    script = tmp_path / "az"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import json, os, sys, time
        from hybridconn.emulator import mint_token
        args = sys.argv[1:]
        principal = os.environ.get("FAKE_AZ_PRINCIPAL")
        if args[:2] != ["account", "get-access-token"] or not principal:
            sys.stderr.write("ERROR: Please run 'az login' to setup account.\\n")
            sys.exit(1)
        resource = args[args.index("--resource") + 1]
        token, expires_on = mint_token(principal, audience=resource)
        print(json.dumps({"accessToken": token, "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000",
                          time.localtime(expires_on)), "expires_on": expires_on, "tokenType": "Bearer",
                          "subscription": "00000000-0000-0000-0000-000000000000", "tenant": "dev"}))
    """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_azure_cli_credential_for_local_development(fake_az: Path, make_listener: Make, make_client: Make,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_AZ_PRINCIPAL", "owner-app")
    listener = make_listener(credential=AzureCliCredential())
    listener.on_request = ok
    assert make_client(credential=AzureCliCredential()).request("GET", "/", timeout=15).status_code == 200
    monkeypatch.delenv("FAKE_AZ_PRINCIPAL")
    with pytest.raises(AuthenticationError, match="az login"):
        make_listener("hc2", credential=AzureCliCredential())


def _renewal_run(identity: DevIdentityEndpoint, make_listener: Make, make_client: Make, seconds: float) -> None:
    identity.token_lifetime = 10
    listener = make_listener(open=False, credential=secret_credential(identity))
    listener.on_request = lambda req: RelayedResponse(body=req.body)
    events = StatusLog(listener)
    listener.open(timeout=15)
    client = make_client(credential=secret_credential(identity))
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        body = str(count).encode()
        response = client.request("POST", f"/n/{count}", data=body, timeout=15)
        assert response.status_code == 200 and response.content == body, (count, response.status_code)
        count += 1
    assert events.offline_errors == [], events.offline_errors
    assert listener.stats["connects"] == 1 and listener.is_online
    # 10 s tokens renewed at half their life (the 30-s floor of the 80 % rule): about one renewal every 5 s.
    assert listener.stats["renewals"] >= int(seconds / 5) - 2, listener.stats
    print(f"{seconds:g} s under 10 s tokens: {count} requests, renewals={listener.stats['renewals']}, "
          f"tokens issued={identity.issued}, drops=0")


@pytest.mark.timeout(240)
def test_renewal_under_10_second_tokens_for_60_seconds(identity: DevIdentityEndpoint, make_listener: Make,
                                                       make_client: Make) -> None:
    _renewal_run(identity, make_listener, make_client, 60)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_renewal_under_10_second_tokens_for_5_minutes(identity: DevIdentityEndpoint, make_listener: Make,
                                                      make_client: Make) -> None:
    _renewal_run(identity, make_listener, make_client, 300)
