"""Every connection string a command prints is an ``export NAME='...'`` line that works pasted into a shell.

Issue 19, item 3: unquoted, ``HYBRIDCONN_CONNECTION_STRING=Endpoint=...;SharedAccessKeyName=...`` is cut
at the first ``;`` by the shell. ``pasted`` runs each printed line through ``sh`` and reads the variable
back. (``listen`` and the samples are checked through ``ChildProcess.connection_string``, ``serve`` in
tests/wsgi.)
"""

from __future__ import annotations

import pytest

import hybridconn
from hybridconn.commands._common import export_line
from tests.support.processes import StartProcess, child_env, pasted, run_cli


@pytest.mark.parametrize("value", ["a;b=c", "it's; quoted", "Endpoint=sb://x/;EntityPath=hc1", ""])
def test_export_line_survives_the_shell(value: str) -> None:
    assert pasted(export_line(value)) == value


def test_emulator_prints_paste_ready_lines_that_reach_it(start_process: StartProcess) -> None:
    emulator = start_process(["-m", "hybridconn", "emulator", "--port", "0", "--hc", "a", "--hc", "b"], child_env())
    first = pasted(emulator.wait_for("HYBRIDCONN_CONNECTION_STRING="))
    second = pasted(emulator.wait_for("HYBRIDCONN_CONNECTION_STRING="))
    assert first.endswith(";EntityPath=a;UseDevelopmentEmulator=true") and "EntityPath=b" in second
    # The pasted value works: a listener comes online with it and a sender reaches it.
    listener = hybridconn.HybridConnectionListener.from_connection_string(first)
    listener.on_request(lambda request: hybridconn.RelayedResponse(body=b"pasted"))
    with listener:
        listener.open(timeout=30)
        result = run_cli(["request", "GET", "/"], child_env(first))
    assert (result.returncode, result.stdout) == (0, "pasted"), result.stderr


def test_tls_emulator_prints_a_paste_ready_ca_cert(start_process: StartProcess) -> None:
    emulator = start_process(["-m", "hybridconn", "emulator", "--port", "0", "--tls-self-signed"], child_env())
    cs = pasted(emulator.wait_for("HYBRIDCONN_CONNECTION_STRING="))
    ca_cert = pasted(emulator.wait_for("HYBRIDCONN_CA_CERT="), "HYBRIDCONN_CA_CERT")
    assert cs.startswith("Endpoint=sb://127.0.0.1:") and ";EntityPath=hc1" in cs
    with open(ca_cert, encoding="ascii") as pem:
        assert pem.read().startswith("-----BEGIN CERTIFICATE-----")
