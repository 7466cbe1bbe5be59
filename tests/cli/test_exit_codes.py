"""Every CLI failure is one line on stderr naming CLI options, with a documented, distinct exit code.

Issue 19, items 9 and 10. The codes are ``hybridconn.commands._exit.EXIT_CODES``; the README's
table and ``hybridconn --help`` show the same ones (checked here).
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Iterator, List

import pytest

import hybridconn
from hybridconn.cli import main
from hybridconn.commands import _exit
from hybridconn.emulator import RelayEmulator
from tests.support.processes import REPO, StartProcess, child_env, run_cli


def one_line_error(stderr: str, command: str) -> str:
    """The single error line, checked for shape: no traceback, no Python argument names."""
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"hybridconn {command}: error: ") or stderr.startswith("hybridconn: error: "), stderr
    assert "Traceback" not in stderr
    assert not re.search(r"\b(path|verify|credential|token_provider)=", stderr), stderr
    return stderr


# -- the table ---------------------------------------------------------------------------------


def test_the_codes_are_distinct_and_each_constant_is_in_the_table() -> None:
    codes = [code for code, _, _ in _exit.EXIT_CODES]
    assert len(codes) == len(set(codes))
    for code, name, meaning in _exit.EXIT_CODES:
        assert getattr(_exit, name) == code and meaning
    constants = {name for name, value in vars(_exit).items() if name.isupper() and isinstance(value, int)}
    assert constants == {name for _, name, _ in _exit.EXIT_CODES}


def test_help_and_readme_list_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    readme = (REPO / "README.rst").read_text(encoding="utf-8")
    for code, _, meaning in _exit.EXIT_CODES:
        assert f"{code} {meaning}" in help_text
        assert re.search(rf"^``{code}``\s+", readme, re.M), f"README's exit code table lacks {code}"


# -- usage -------------------------------------------------------------------------------------


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == _exit.USAGE
    err = one_line_error(capsys.readouterr().err, "")
    assert "COMMAND" in err and "request" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["request", "GET", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["emulator", "--port", "80000"], "--port: 80000 is not a TCP port"),
        (["emulator", "--port", "http"], "--port: 'http' is not a TCP port number"),
        (["emulator", "--max-connections-per-client", "-1"], "-1 is negative: use 0 for no cap"),
        (["emulator", "--max-uploads-per-client", "many"], "'many' is not a whole number"),
        (["emulator", "--head-timeout", "0"], "0 is not a positive number of seconds"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(argv: List[str], words: str) -> None:
    result = run_cli(argv, child_env())
    assert result.returncode == _exit.USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr and "Traceback" not in result.stderr


def test_a_connection_string_without_entity_path_names_the_path_option() -> None:
    cs = "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true"
    result = run_cli(["request", "GET", "/"], child_env(cs))
    assert result.returncode == _exit.USAGE
    assert "pass --path NAME or add ;EntityPath=NAME" in one_line_error(result.stderr, "request")


def test_a_connection_string_without_a_key_is_a_local_error_naming_auth() -> None:
    cs = "Endpoint=sb://127.0.0.1:1/;EntityPath=hc1;UseDevelopmentEmulator=true"  # nothing listens on port 1
    for argv in (["request", "GET", "/"], ["connect"], ["listen", "--once"]):
        result = run_cli(argv, child_env(cs))
        assert result.returncode == _exit.USAGE, result.stderr
        err = one_line_error(result.stderr, argv[0])
        assert "no SharedAccessKeyName and SharedAccessKey" in err and "--auth MODE" in err


def test_managed_identity_and_credential_still_pass_the_local_check() -> None:
    cs = "Endpoint=sb://ns.example/;EntityPath=hc1"
    mi = hybridconn.HybridConnectionListener.from_connection_string(cs + ";Authentication=Managed Identity")
    assert type(mi.token_provider).__name__ == "EntraTokenProvider"
    from hybridconn.emulator import DevCredential

    with hybridconn.HybridConnectionClient.from_connection_string(cs, credential=DevCredential("app")) as client:
        assert client.token_provider is not None
    with pytest.raises(hybridconn.ConfigurationError, match="pass credential="):
        hybridconn.HybridConnectionListener.from_connection_string(cs)


# -- the relay's answers -----------------------------------------------------------------------


def test_no_listener_exits_11(relay_connection_string: str) -> None:
    result = run_cli(["request", "GET", "/"], child_env(relay_connection_string))
    assert result.returncode == _exit.NO_LISTENER
    one_line_error(result.stderr, "request")


def test_a_wrong_key_exits_67(relay_connection_string: str) -> None:
    bad = re.sub(r"SharedAccessKey=[^;]+", "SharedAccessKey=d3Jvbmc=", relay_connection_string)
    result = run_cli(["request", "GET", "/"], child_env(bad))
    assert result.returncode == _exit.AUTH, result.stderr
    assert "d3Jvbmc" not in one_line_error(result.stderr, "request")


def test_an_unknown_hybrid_connection_exits_10(relay_emulator: RelayEmulator) -> None:
    cs = relay_emulator.connection_string("hc1")
    result = run_cli(["request", "GET", "/", "--path", "nope"], child_env(cs.replace(";EntityPath=hc1", "")))
    assert result.returncode == _exit.NOT_FOUND, result.stderr
    one_line_error(result.stderr, "request")


def test_an_unreachable_relay_exits_7(relay_connection_string: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        cs = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", relay_connection_string)
        result = run_cli(["request", "GET", "/"], child_env(cs))
    assert result.returncode == _exit.CONNECT, result.stderr
    one_line_error(result.stderr, "request")


# -- addresses ---------------------------------------------------------------------------------


def test_emulator_port_in_use_names_the_address_and_a_way_out() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(["emulator", "--port", str(port)], child_env())
    assert result.returncode == _exit.ADDRESS, result.stderr
    err = one_line_error(result.stderr, "emulator")
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port 0" in err


# -- connect: the listener goes away -----------------------------------------------------------


class GoingAway:
    """A listener that answers the first message, then closes with 1001 (as a listener shutting down does)."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def on_connection(self, conn: hybridconn.HybridConnection) -> None:
        try:
            conn.send(conn.recv(timeout=30))
            conn.close(1001, "shutting down")
        finally:
            self.closed.set()


@pytest.fixture
def going_away(relay_connection_string: str) -> Iterator[GoingAway]:
    handler = GoingAway()
    listener = hybridconn.HybridConnectionListener.from_connection_string(relay_connection_string)
    listener.on_connection(handler.on_connection)
    with listener:
        yield handler


def test_connect_reports_a_listener_that_went_away(
    going_away: GoingAway, relay_connection_string: str, start_process: StartProcess
) -> None:
    connect = start_process(
        ["-m", "hybridconn", "connect"], child_env(relay_connection_string), stdin_pipe=True
    )
    connect.send_line("hello")
    assert connect.wait_for("hello") == "hello"
    assert going_away.closed.wait(30)
    assert connect.finish() == _exit.CLOSED  # stdin is still open: the listener ended it
    assert "the listener closed the connection: 1001 shutting down" in connect.stderr
