"""``hybridconn emulator`` on a network-facing address with the published development key is
refused unless ``--allow-dev-key`` (then it warns); with a key of one's own it serves quietly. The
banner shows the address actually bound."""

from __future__ import annotations

from hybridconn.commands.emulator import is_loopback
from tests.support.processes import StartProcess, child_env, run_cli


def test_a_network_bind_with_the_development_key_is_refused() -> None:
    done = run_cli(["emulator", "--host", "0.0.0.0", "--port", "0"], child_env())
    assert done.returncode != 0
    assert "refusing to serve on 0.0.0.0 with the published development key" in done.stderr
    assert "HYBRIDCONN_CONNECTION_STRING" not in done.stdout


def test_allow_dev_key_serves_with_a_warning_and_the_bound_address(start_process: StartProcess) -> None:
    child = start_process(["-m", "hybridconn", "emulator", "--host", "0.0.0.0", "--port", "0", "--allow-dev-key"],
                          child_env(), merge_stderr=True)
    warning = child.wait_for("published development key")
    assert "anyone who can reach this port" in warning
    bound = child.wait_for("bound to")
    assert "bound to 0.0.0.0:" in bound and "bound to 0.0.0.0:0;" not in bound


def test_a_key_of_ones_own_serves_without_the_warning(start_process: StartProcess) -> None:
    child = start_process(["-m", "hybridconn", "emulator", "--host", "0.0.0.0", "--port", "0",
                           "--key", "bXktb3duLWtleS1mb3ItdGhlLWV4cG9zdXJlLXRlc3Q="], child_env(), merge_stderr=True)
    child.wait_for("bound to 0.0.0.0:")
    assert not any("published development key" in line for line in child.lines)


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "devbox", ""))
