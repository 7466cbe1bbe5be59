"""The CLI with Microsoft Entra ID: ``--auth``, ``$HYBRIDCONN_AUTH`` and ``Authentication=Managed Identity``
on listen, request, connect, forward and token, with azure-identity's managed identity credential
asking the development identity endpoint (as on App Service)."""

from __future__ import annotations

import socket
from typing import Dict

import pytest

from hybridconn._entra import jwt_claims
from hybridconn.cli import main
from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.identity import DevIdentityEndpoint
from tests.conftest import StartProcess
from tests.support.processes import child_env, run_cli
from tests.support.sockets import free_port
from tests.support.tcp_echo import EchoServer


def mi_env(identity: DevIdentityEndpoint, cs: str, **extra: str) -> Dict[str, str]:
    env = child_env(cs)
    for name in ("AZURE_CLIENT_ID", "HYBRIDCONN_AUTH", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        env.pop(name, None)
    env.update(identity.environment, **extra)
    return env


def test_listen_and_request_with_auth_managed_identity(start_process: StartProcess, relay: RelayEmulator,
                                                       app_service: DevIdentityEndpoint,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cs = relay.connection_string("hc1", entra=True)
    listen = start_process(["-m", "hybridconn", "listen", "--echo", "--once", "--auth", "managed-identity"],
                           mi_env(app_service, cs), merge_stderr=True)
    listen.wait_for("hybridconn listen: online on namespace 127.0.0.1:")
    assert main(["request", "POST", "/entra", "-d", "hello", "--auth", "managed-identity", "-c", cs]) == 0
    assert capsys.readouterr().out == "hello"
    assert listen.finish() == 0
    assert "eyJ" not in "\n".join(listen.lines)  # no token in the output


def test_hybridconn_auth_variable_and_the_connection_strings_authentication(
        start_process: StartProcess, relay: RelayEmulator, app_service: DevIdentityEndpoint,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cs = relay.connection_string("hc1", entra=True) + ";Authentication=Managed Identity"
    listen = start_process(
        ["-m", "hybridconn", "listen", "--echo", "--once"], mi_env(app_service, cs), merge_stderr=True
    )
    listen.wait_for("online on namespace")
    monkeypatch.setenv("HYBRIDCONN_AUTH", "managed-identity")
    assert main(["request", "GET", "/", "-c", relay.connection_string("hc1", entra=True)]) == 0
    assert listen.finish() == 0


def test_connect_with_auth(start_process: StartProcess, relay: RelayEmulator, app_service: DevIdentityEndpoint) -> None:
    cs = relay.connection_string("hc1", entra=True)
    listen = start_process(["-m", "hybridconn", "listen", "--echo", "--once", "--auth", "managed-identity"],
                           mi_env(app_service, cs), merge_stderr=True)
    listen.wait_for("online on namespace")
    result = run_cli(["connect", "--auth", "managed-identity"], mi_env(app_service, cs), stdin="one\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\n"
    assert listen.finish() == 0


def test_forward_with_auth(start_process: StartProcess, relay: RelayEmulator, app_service: DevIdentityEndpoint) -> None:
    cs = relay.connection_string("hc1", entra=True)
    with EchoServer() as echo:
        port = free_port()
        forward = start_process(["-m", "hybridconn", "forward", "--auth", "managed-identity",
                                 "-R", f"hc1:127.0.0.1:{echo.port}", "-L", f"{port}:hc1/{echo.port}"],
                                mi_env(app_service, cs), merge_stderr=True)
        forward.wait_for(f"forwarding 127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(b"through entra")
            assert sock.recv(100) == b"through entra"


def test_token_prints_an_entra_token(relay: RelayEmulator, app_service: DevIdentityEndpoint,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--auth", "managed-identity"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt_claims(token)["oid"] == "system-mi" and jwt_claims(token)["aud"] == "https://relay.azure.net/"
    cs = relay.connection_string("hc1", entra=True) + ";Authentication=Managed Identity"
    assert main(["token", "-c", cs]) == 0
    assert jwt_claims(capsys.readouterr().out.strip())["oid"] == "system-mi"


def test_an_unknown_auth_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HYBRIDCONN_AUTH", "kerberos")
    assert main(["request", "GET", "/", "-c", "Endpoint=sb://127.0.0.1:1/;EntityPath=hc1"]) != 0
    assert (
        "$HYBRIDCONN_AUTH is 'kerberos': choose one of connection-string, default, managed-identity"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["request", "GET", "/", "--auth", "kerberos"])
