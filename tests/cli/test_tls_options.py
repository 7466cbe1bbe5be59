"""--ca-cert, --insecure and $HYBRIDCONN_CA_CERT on the command line (issue 19, item 6), and a plain emulator
reached without UseDevelopmentEmulator=true told so (item 5)."""

from __future__ import annotations

import os
from typing import Iterator, List, Tuple

import pytest

import hybridconn
from hybridconn.commands import _exit
from hybridconn.emulator import RelayEmulator
from tests.support.processes import StartProcess, child_env, run_cli
from tests.support.sockets import free_port
from tests.support.tcp_echo import EchoServer, echo_roundtrip


@pytest.fixture
def tls_relay() -> Iterator[Tuple[str, str]]:
    """(connection string, CA certificate) of a TLS emulator with an echoing listener on hc1."""
    with RelayEmulator(hybrid_connections=["hc1"], tls="self-signed") as relay:
        assert relay.certificate_path
        cs = relay.connection_string("hc1")
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs, verify=relay.certificate_path)
        listener.on_request(lambda request: hybridconn.RelayedResponse(body=b"over tls"))
        with listener:
            yield cs, relay.certificate_path


def test_without_a_ca_cert_the_error_names_the_options(tls_relay: Tuple[str, str]) -> None:
    cs, _ = tls_relay
    env = child_env(cs)
    env.pop("HYBRIDCONN_CA_CERT", None)
    result = run_cli(["request", "GET", "/"], env)
    assert result.returncode == _exit.TLS, result.stderr
    assert result.stderr.count("\n") == 1
    assert (
        "--ca-cert FILE" in result.stderr and "HYBRIDCONN_CA_CERT" in result.stderr and "verify=" not in result.stderr
    )


@pytest.mark.parametrize("how", ["--ca-cert", "env", "--insecure"])
def test_each_way_of_trusting_the_emulator_works(tls_relay: Tuple[str, str], how: str) -> None:
    cs, ca_cert = tls_relay
    env = child_env(cs)
    env.pop("HYBRIDCONN_CA_CERT", None)
    argv: List[str] = ["request", "GET", "/"]
    if how == "--ca-cert":
        argv += ["--ca-cert", ca_cert]
    elif how == "env":
        env["HYBRIDCONN_CA_CERT"] = ca_cert
    else:
        argv += ["--insecure"]
    result = run_cli(argv, env)
    assert (result.returncode, result.stdout) == (0, "over tls"), result.stderr


def test_ca_cert_and_insecure_together_or_a_missing_file_are_usage_errors(tls_relay: Tuple[str, str]) -> None:
    cs, ca_cert = tls_relay
    both = run_cli(["request", "GET", "/", "--ca-cert", ca_cert, "--insecure"], child_env(cs))
    assert both.returncode == _exit.USAGE and "--insecure" in both.stderr
    missing = run_cli(["request", "GET", "/", "--ca-cert", os.devnull + ".missing"], child_env(cs))
    assert missing.returncode == _exit.USAGE and "--ca-cert" in missing.stderr and "no such CA bundle" in missing.stderr


def test_a_plain_emulator_without_use_development_emulator_says_what_is_missing(relay_connection_string: str) -> None:
    cs = relay_connection_string.replace(";UseDevelopmentEmulator=true", "")
    result = run_cli(["request", "GET", "/"], child_env(cs))
    assert result.returncode == _exit.TLS, result.stderr
    assert result.stderr.count("\n") == 1 and "needs ;UseDevelopmentEmulator=true" in result.stderr


def test_serve_workers_honour_ca_cert_and_auth_settings(start_process: StartProcess) -> None:
    # The lead's list for issue 19: serve's workers built their listeners from the connection string only.
    with RelayEmulator(hybrid_connections=["hc1"], tls="self-signed") as relay:
        assert relay.certificate_path
        cs = relay.connection_string("hc1")
        env = child_env(cs)
        env.pop("HYBRIDCONN_CA_CERT", None)
        serve = start_process(
            [
                "-m",
                "hybridconn",
                "serve",
                "tests.serve.serve_app",
                "-w",
                "1",
                "--threads",
                "2",
                "--ca-cert",
                relay.certificate_path,
                "--auth",
                "connection-string",
            ],
            env,
        )
        serve.wait_for("Ctrl-C to stop")
        result = run_cli(["request", "GET", "/addr", "--ca-cert", relay.certificate_path], env)
        assert result.returncode == 0, result.stderr
        assert serve.interrupt() == 0


def test_serve_refuses_a_bad_auth_or_ca_cert_before_starting_workers() -> None:
    cs = "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=hc1"
    bad_auth = run_cli(["serve", "tests.serve.serve_app", "--auth", "nope"], child_env(cs))
    assert bad_auth.returncode == _exit.USAGE and "--auth is 'nope': choose one of" in bad_auth.stderr, bad_auth.stderr
    bad_ca = run_cli(["serve", "tests.serve.serve_app", "--ca-cert", "/no/such.pem"], child_env(cs))
    assert bad_ca.returncode == _exit.USAGE and "no such CA bundle" in bad_ca.stderr, bad_ca.stderr


def test_forward_trusts_the_relay_by_ca_cert_and_keeps_insecure_for_its_web_servers(
        start_process: StartProcess) -> None:
    # forward's --insecure is azbridge's (an https web server behind -H); --ca-cert is the relay's, as elsewhere.
    with RelayEmulator(hybrid_connections=["fwd"], tls="self-signed") as relay, EchoServer() as echo:
        assert relay.certificate_path
        env = child_env(relay.connection_string("fwd"))
        env.pop("HYBRIDCONN_CA_CERT", None)
        port = free_port()
        forward = start_process(["-m", "hybridconn", "forward", "-R", f"fwd:127.0.0.1:{echo.port}",
                                 "-L", f"127.0.0.1:{port}:fwd", "--ca-cert", relay.certificate_path], env)
        forward.wait_for(f"forwarding 127.0.0.1:{port}")
        sent, received, count = echo_roundtrip(("127.0.0.1", port), 100_000, seed=5)
        assert count == 100_000 and sent == received
        assert forward.interrupt() == 0
        without = run_cli(["forward", "-R", f"fwd:127.0.0.1:{echo.port}"], env)
        assert without.returncode == _exit.TLS and "--ca-cert" in without.stderr, without.stderr
    untrusted = run_cli(["forward", "-R", "fwd:127.0.0.1:9", "--ca-cert", "/no/such.pem"], env)
    assert untrusted.returncode == _exit.USAGE and "no such CA bundle" in untrusted.stderr, untrusted.stderr
