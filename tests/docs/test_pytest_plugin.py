"""The pytest plugin as a user meets it: installed hybridconn, a test file, no conftest of ours."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import hybridconn.pytest_plugin as plugin

USER_TESTS = textwrap.dedent(
    '''
    import pytest

    import hybridconn

    seen = []


    @pytest.fixture
    def relay_emulator_options():
        return {"hybrid_connections": ["orders", "invoices"]}


    def test_override_names_the_hybrid_connections(relay_emulator, relay_connection_string):
        assert "EntityPath=orders;" in relay_connection_string
        invoices = relay_emulator.connection_string("invoices")
        listener = hybridconn.HybridConnectionListener.from_connection_string(invoices)
        listener.on_request(lambda request: hybridconn.RelayedResponse(body=b"paid"))
        with listener:
            with hybridconn.HybridConnectionClient.from_connection_string(invoices) as client:
                assert client.request("GET", "/42", timeout=10).text == "paid"


    def test_a_relay_runs_during_the_test(relay_emulator):
        assert relay_emulator.running
        seen.append(relay_emulator)


    def test_it_is_stopped_after_the_test_and_each_test_gets_its_own(relay_emulator):
        assert seen and not seen[-1].running
        assert relay_emulator is not seen[-1] and relay_emulator.running
    '''
)


def test_fixtures_work_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_user_project.py").write_text(USER_TESTS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


def test_the_plugin_is_registered_by_the_entry_point() -> None:
    from importlib.metadata import entry_points

    found = (
        [ep for ep in entry_points(group="pytest11") if ep.name == "hybridconn"]
        if sys.version_info >= (3, 10)
        else [
            ep
            for ep in entry_points().get("pytest11", [])
            if ep.name == "hybridconn"  # type: ignore[attr-defined]
        ]
    )
    assert [ep.value for ep in found] == ["hybridconn.pytest_plugin"]
    assert plugin.DEFAULT_HYBRID_CONNECTION == "hc1"
    assert "relay_emulator_options" in (plugin.__doc__ or "")
