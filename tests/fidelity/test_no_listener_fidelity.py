"""No listener online, in every status the service might use (502 or 503 for HTTP, 404 or 502 for a
WebSocket connect): the client raises ``ListenerUnavailableError`` each time, and
``EndpointNotFoundError`` without it only for a hybrid connection that does not exist."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from hybridconn import (
    EndpointNotFoundError,
    HybridConnectionClient,
    ListenerUnavailableError,
    NoListenerConnectedError,
)
from hybridconn.commands import _exit
from hybridconn.emulator.fidelity import Fidelity
from hybridconn.exceptions import error_for_status
from tests.support.endpoints import make_client
from tests.support.processes import child_env, run_cli

VARIANTS = [
    {"no_listener_status": 502, "no_listener_connect_status": 404},
    {"no_listener_status": 503, "no_listener_connect_status": 502},
]


def _options(**changes: Any) -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "fidelity": Fidelity(**changes)}


@pytest.mark.parametrize("relay_emulator_options", [_options(**v) for v in VARIANTS], ids=["502-404", "503-502"])
def test_no_listener_is_listener_unavailable_for_request_and_connect(relay: Any) -> None:
    fidelity = relay.fidelity
    with make_client(relay) as client:
        with pytest.raises(ListenerUnavailableError) as http_error:
            client.request("GET", "/x", timeout=15)
        with pytest.raises(ListenerUnavailableError) as ws_error:
            client.connect(timeout=15)
    assert http_error.value.status_code == fidelity.no_listener_status
    assert ws_error.value.status_code == fidelity.no_listener_connect_status
    # A 404 that says "no listeners connected" is also the EndpointNotFoundError code written for it expects.
    assert isinstance(ws_error.value, EndpointNotFoundError) == (fidelity.no_listener_connect_status == 404)
    for error in (http_error.value, ws_error.value):
        assert error.tracking_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("relay_emulator_options", [_options(**v) for v in VARIANTS], ids=["502-404", "503-502"])
def test_a_missing_hybrid_connection_is_only_endpoint_not_found(relay: Any) -> None:
    with HybridConnectionClient.from_connection_string(relay.connection_string("hc1").replace("hc1", "nope")) as client:
        with pytest.raises(EndpointNotFoundError) as http_error:
            client.request("GET", "/", timeout=15)
        with pytest.raises(EndpointNotFoundError) as ws_error:
            client.connect(timeout=15)
    for error in (http_error.value, ws_error.value):
        assert error.status_code == 404
        assert not isinstance(error, ListenerUnavailableError)


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("There are no listeners connected for the endpoint. TrackingId:abc_G13", NoListenerConnectedError),
        ("None of the connected listeners meet the AllowedListeners/DisallowedListeners criteria.",
         NoListenerConnectedError),
        ("Endpoint does not exist. TrackingId:abc", EndpointNotFoundError),
        ("Not Found", EndpointNotFoundError),
    ],
)
def test_404_texts_tell_no_listener_from_no_hybrid_connection(reason: str, expected: type) -> None:
    error = error_for_status(404, reason)
    assert type(error) is expected


@pytest.mark.parametrize("relay_emulator_options", [_options(**v) for v in VARIANTS], ids=["502-404", "503-502"])
@pytest.mark.parametrize("command", [["request", "GET", "/"], ["connect", "--timeout", "15"]])
def test_the_cli_exits_no_listener_in_every_variant(relay: Any, command: Any) -> None:
    result = run_cli(command, child_env(relay.connection_string("hc1")))
    assert result.returncode == _exit.NO_LISTENER, result.stderr


def test_the_emulator_command_takes_every_new_fidelity_option() -> None:
    import argparse

    from hybridconn.commands import emulator as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--profile", "default", "--no-listener-status", "503", "--no-listener-connect-status",
                              "502", "--request-host", "forward", "--case-sensitive-names"])
    assert command.fidelity_from(args) == Fidelity(no_listener_status=503, no_listener_connect_status=502,
                                                   request_host="forward", case_sensitive_names=True)
    args = parser.parse_args(["--profile", "pessimistic", "--no-case-sensitive-names"])
    assert command.fidelity_from(args).case_sensitive_names is False
    assert command.fidelity_from(parser.parse_args(["--profile", "default"])) == Fidelity()
