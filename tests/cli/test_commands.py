"""`hybridconn listen`, `request` and `connect` against the emulator, and the CLI's common behaviour."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

import hybridconn
from hybridconn.cli import COMMANDS, build_parser, main
from tests.support.processes import StartProcess, child_env, run_cli


class Recorder:
    """An in-test listener: answers /status/N with N, echoes otherwise, upper-cases WebSocket text."""

    def __init__(self) -> None:
        self.requests: List[hybridconn.RelayedRequest] = []
        self.connect_headers: List[Dict[str, str]] = []
        self.closed = threading.Event()

    def on_request(self, request: hybridconn.RelayedRequest) -> hybridconn.RelayedResponse:
        self.requests.append(request)
        if request.path.startswith("/status/"):
            status = int(request.path.rsplit("/", 1)[1])
            return hybridconn.RelayedResponse(status=status, body=f"status {status}\n")
        return hybridconn.RelayedResponse(
            headers={"Content-Type": "application/octet-stream", "X-Echo": "yes"}, body=request.body
        )

    def on_connection(self, conn: hybridconn.HybridConnection) -> None:
        self.connect_headers.append(dict(conn.headers))
        try:
            for message in conn:
                conn.send(message.upper() if isinstance(message, str) else message[::-1])
        finally:
            self.closed.set()


@pytest.fixture
def recorder(relay_connection_string: str) -> Iterator[Recorder]:
    recorder = Recorder()
    listener = hybridconn.HybridConnectionListener.from_connection_string(relay_connection_string)
    listener.on_request(recorder.on_request)
    listener.on_connection(recorder.on_connection)
    with listener:
        yield recorder


# -- help and errors -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["demo", "listen", "connect", "request", "token"])
def test_help_everywhere(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert command in COMMANDS
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hybridconn {command}")
    assert "--verbose" in out and "--debug" in out


@pytest.mark.parametrize("argv", [["request", "GET", "/"], ["connect"]])
def test_senders_need_a_connection_string(
    argv: List[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDCONN_CONNECTION_STRING", raising=False)
    assert main(argv) == 2  # usage
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no connection string" in err and "HYBRIDCONN_CONNECTION_STRING" in err


def test_no_listener_is_one_line_and_exit_11_and_debug_shows_the_traceback(relay_connection_string: str) -> None:
    result = run_cli(["request", "GET", "/"], child_env(relay_connection_string))
    assert result.returncode == 11  # no listener online
    assert result.stdout == ""
    assert result.stderr.startswith("hybridconn request: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "SharedAccessKey" not in result.stderr and "sig=" not in result.stderr
    debug = run_cli(["request", "GET", "/", "--debug"], child_env(relay_connection_string))
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "ListenerUnavailableError" in debug.stderr


# -- request ---------------------------------------------------------------------------------


def test_request_prints_the_body_and_sends_data_and_headers(
    recorder: Recorder, relay_connection_string: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["request", "post", "/echo?x=1", "-d", "hi there", "-H", "X-Trace: 42", "-c", relay_connection_string])
    out, err = capsys.readouterr()
    assert (code, out, err) == (0, "hi there", "")
    request = recorder.requests[-1]
    assert (request.method, request.path, request.query) == ("POST", "/echo", "x=1")
    assert request.headers["X-Trace"] == "42"


def test_request_reads_data_from_a_file_and_stdin(
    recorder: Recorder,
    relay_connection_string: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = b"0123456789abcdef" * 6400  # 100 kB: goes by rendezvous
    (tmp_path / "body.bin").write_bytes(payload)
    assert (
        main(["request", "PUT", "/file", "--data-binary", f"@{tmp_path / 'body.bin'}", "-c", relay_connection_string])
        == 0
    )
    capsys.readouterr()
    assert recorder.requests[-1].body == payload
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    assert main(["request", "POST", "/stdin", "-d", "@-", "-c", relay_connection_string]) == 0
    assert capsys.readouterr().out == "from stdin"


@pytest.mark.parametrize(
    "options, body, content_type",
    [
        (["-d", "name=Ada"], b"name=Ada", "application/x-www-form-urlencoded"),
        (["-d", "a=1", "-d", "b=2"], b"a=1&b=2", "application/x-www-form-urlencoded"),
        (["--data-binary", "raw\nbytes"], b"raw\nbytes", "application/octet-stream"),
        (["--json", '{"n": 1}'], b'{"n": 1}', "application/json"),
        (["-d", "x=1", "-H", "Content-Type: text/plain"], b"x=1", "text/plain"),
    ],
)
def test_request_body_options_follow_curl(
    recorder: Recorder,
    relay_connection_string: str,
    capsys: pytest.CaptureFixture[str],
    options: List[str],
    body: bytes,
    content_type: str,
) -> None:
    assert main(["request", "POST", "/form", *options, "-c", relay_connection_string]) == 0
    capsys.readouterr()
    request = recorder.requests[-1]
    assert request.body == body
    assert request.headers["Content-Type"] == content_type
    if "--json" in options:
        assert request.headers["Accept"] == "application/json"


def test_request_form_data_from_a_file_drops_line_breaks_as_curl_does(
    recorder: Recorder, relay_connection_string: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "form.txt").write_bytes(b"name=Ada\r\n&lang=en\n")
    assert main(["request", "POST", "/form", "-d", f"@{tmp_path / 'form.txt'}", "-c", relay_connection_string]) == 0
    capsys.readouterr()
    assert recorder.requests[-1].body == b"name=Ada&lang=en"


def test_request_status_goes_to_stderr_with_verbose_and_fail_sets_the_exit_code(
    recorder: Recorder, relay_connection_string: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["request", "GET", "/status/404", "-c", relay_connection_string]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("status 404\n", "")
    assert main(["request", "GET", "/status/404", "--fail", "-c", relay_connection_string]) == 22
    out, err = capsys.readouterr()
    assert err == "hybridconn request: HTTP 404 Not Found\n"
    assert main(["request", "GET", "/echo", "-v", "-c", relay_connection_string]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "HTTP 200 OK"
    assert "X-Echo: yes" in err.splitlines()


def test_request_rejects_a_malformed_header(relay_connection_string: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["request", "GET", "/", "-H", "no colon here", "-c", relay_connection_string]) == 2
    assert "is not 'Name: value'" in capsys.readouterr().err


# -- connect ---------------------------------------------------------------------------------


def test_connect_sends_stdin_lines_and_prints_replies(recorder: Recorder, relay_connection_string: str) -> None:
    result = run_cli(
        ["connect", "--suffix", "/chat", "-H", "X-Who: tester"],
        child_env(relay_connection_string),
        stdin="hello\nworld\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HELLO\nWORLD\n"
    assert result.stderr == ""
    assert recorder.closed.wait(10)
    assert (
        recorder.connect_headers[-1].get("X-Who") == "tester" or recorder.connect_headers[-1].get("x-who") == "tester"
    )


def test_connect_binary_mode(recorder: Recorder, relay_connection_string: str) -> None:
    result = run_cli(["connect", "--binary"], child_env(relay_connection_string), stdin="abc\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "cba\n"  # the recorder reverses binary messages


def test_connect_without_a_listener_fails_in_one_line(relay_connection_string: str) -> None:
    result = run_cli(["connect", "--timeout", "10"], child_env(relay_connection_string), stdin="x\n")
    # The relay's 404 "There are no listeners connected": NoListenerConnectedError, exit 11 NO_LISTENER
    # (10 NOT_FOUND is only for a missing hybrid connection; issue 14).
    assert result.returncode == 11
    assert result.stderr.startswith("hybridconn connect: error: ") and result.stderr.count("\n") == 1


# -- listen ----------------------------------------------------------------------------------


def test_listen_echo_prints_and_answers_a_request(
    start_process: StartProcess, relay_connection_string: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listen = start_process(
        ["-m", "hybridconn", "listen", "--echo", "--once", "-v"], child_env(relay_connection_string), merge_stderr=True
    )
    listen.wait_for("hybridconn listen: online on namespace 127.0.0.1:")
    assert (
        main(["request", "POST", "/hello?x=1", "-d", "hi there", "-H", "X-Trace: 7", "-c", relay_connection_string])
        == 0
    )
    assert capsys.readouterr().out == "hi there"
    assert listen.finish() == 0
    text = "\n".join(listen.lines)
    assert "HTTP POST /hello?x=1 (8 bytes, control channel)" in text
    assert "  X-Trace: 7" in text
    assert "  hi there" in text
    assert "SharedAccessKey" not in text  # a real namespace's key is never printed


def test_listen_on_an_embedded_emulator_serves_connect(start_process: StartProcess) -> None:
    listen = start_process(["-m", "hybridconn", "listen", "--echo", "--once"], child_env(), merge_stderr=True)
    cs = listen.connection_string()  # the printed line, pasted into sh
    assert "UseDevelopmentEmulator=true" in cs
    listen.wait_for("Ctrl-C to stop")
    result = run_cli(["connect"], child_env(cs), stdin="one\ntwo\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n"
    assert listen.finish() == 0
    text = "\n".join(listen.lines)
    assert "WebSocket connected /" in text and " text: one" in text and " text: two" in text
    assert "WebSocket closed" in text


def test_every_registered_command_builds() -> None:
    parser = build_parser()
    for command in ("demo", "listen", "connect", "request", "token"):
        assert parser.parse_args([command] + (["GET"] if command == "request" else [])).command == command
