"""`hybridconn forward`: spec parsing, and a real process forwarding through the emulator, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import List

import pytest

from hybridconn.cli import main
from hybridconn.commands.forward import parse_local, parse_remote
from hybridconn.exceptions import ConfigurationError
from tests.support.sockets import free_port
from tests.support.tcp_echo import EchoServer, echo_roundtrip


def test_parse_local_specs() -> None:
    assert parse_local("2222:hc") == ("127.0.0.1", 2222, "hc", None)
    assert parse_local("0.0.0.0:2222:hc/ssh") == ("0.0.0.0", 2222, "hc", "ssh")
    assert parse_local("[::1]:80:hc/a/b") == ("::1", 80, "hc", "a/b")


def test_parse_remote_specs() -> None:
    assert parse_remote("hc:localhost:22") == ("hc", None, "localhost", 22)
    assert parse_remote("hc/sql1:db.internal:1433") == ("hc", "sql1", "db.internal", 1433)
    assert parse_remote("hc:[::1]:22") == ("hc", None, "::1", 22)


@pytest.mark.parametrize("spec", ["2222", "x:hc", "70000:hc", ":2222:", "2222:"])
def test_bad_local_specs(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_local(spec)


@pytest.mark.parametrize("spec", ["hc:22", "hc:host:port", ":host:22", "hc:host:"])
def test_bad_remote_specs(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_remote(spec)


def test_cli_needs_a_spec_and_a_connection_string(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HYBRIDCONN_CONNECTION_STRING", raising=False)
    assert main(["forward"]) == 2
    assert main(["forward", "-L", "2222:hc"]) == 2  # usage: hybridconn.commands._exit.USAGE
    assert "connection string" in capsys.readouterr().err


def test_cli_forwards_and_stops_on_ctrl_c(cs: str, echo: EchoServer) -> None:
    port = free_port()
    env = dict(os.environ, HYBRIDCONN_CONNECTION_STRING=cs, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridconn",
            "forward",
            "-R",
            f"fwd:127.0.0.1:{echo.port}",
            "-L",
            f"127.0.0.1:{port}:fwd",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    lines: List[bytes] = []
    ready = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if b"forwarding 127.0.0.1" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stdout, name="test-cli-stdout", daemon=True)
    reader.start()
    try:
        assert ready.wait(30), "the forwarder did not start"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        sent, received, count = echo_roundtrip(("127.0.0.1", port), 200_000, seed=3)
        assert count == 200_000 and sent == received
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        reader.join(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert any(b"forwarding fwd/" in line for line in lines)
