"""`hybridconn demo`: everything goes through the relay, and the report says how."""

from __future__ import annotations

import re

import pytest

from hybridconn.cli import main
from tests.support.processes import child_env, run_cli


def test_demo_on_the_embedded_emulator_passes_every_step(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDCONN_CONNECTION_STRING", raising=False)
    code = main(["demo"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("hybridconn demo: embedded relay emulator at 127.0.0.1:")
    steps = [line for line in lines if line.startswith("  ")]
    assert steps and all(line.startswith("  ok  ") for line in steps), out
    by_name = {line[6:41].strip(): line for line in steps}
    assert "control channel" in by_name["HTTP GET /hello"]
    assert "control channel" in by_name["HTTP POST /echo (1 kB)"]
    assert "rendezvous" in by_name["HTTP POST /echo (200 kB)"] and "control" not in by_name["HTTP POST /echo (200 kB)"]
    assert "resp rendezvous" in by_name["HTTP GET /bytes (200 kB response)"]
    assert "WebSocket text x20" in by_name
    assert all(re.search(r"\d+\.\d ms", line) for line in steps)
    assert re.match(rf"all {len(steps)} steps went through the relay \(\d+\.\d s\)", lines[-1])


def test_demo_against_a_connection_string(
    relay_emulator: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = relay_emulator.connection_string("hc1")  # type: ignore[attr-defined]
    monkeypatch.setenv("HYBRIDCONN_CONNECTION_STRING", cs)
    code = main(["demo", "--large", "70000"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert out.splitlines()[0].startswith("hybridconn demo: namespace 127.0.0.1:")
    assert "hybrid connection 'hc1'" in out.splitlines()[0]
    assert "HTTP POST /echo (68 kB)" in out


def test_demo_fails_with_exit_1_and_says_why(relay_emulator: object, capsys: pytest.CaptureFixture[str]) -> None:
    cs = relay_emulator.connection_string("hc1")  # type: ignore[attr-defined]
    wrong_key = re.sub(r"SharedAccessKey=[^;]+", "SharedAccessKey=not-the-key", cs)
    code = main(["demo", "-c", wrong_key, "--timeout", "10"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "FAIL listener online" in out
    assert "AuthenticationError" in out
    assert "not-the-key" not in out
    assert out.splitlines()[-1].startswith("1 of 1 steps failed")


def test_demo_as_a_command_finishes_and_exits_0() -> None:
    result = run_cli(["demo"], child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "steps went through the relay" in result.stdout
    assert result.stderr == ""
