"""Every sample runs against the embedded emulator, as its docstring says, so none of them rots."""

from __future__ import annotations

import json
import signal
import textwrap

import pytest

from tests.support.processes import SAMPLES, StartProcess, child_env, run_python

COVERED = {
    "listener_http.py",
    "listener_websocket.py",
    "sender_http.py",
    "sender_websocket.py",
    "wsgi_app.py",
    "cron_job.py",
    "notebook.ipynb",
}


def test_every_sample_is_covered_here() -> None:
    present = {p.name for p in SAMPLES.iterdir() if p.suffix in (".py", ".ipynb") and not p.name.startswith("_")}
    assert present == COVERED, "add a test for each new sample (and list it in COVERED)"


@pytest.mark.parametrize(
    "sample, advice",
    [
        ("sender_http.py", "run samples/listener_http.py"),
        ("sender_websocket.py", "run samples/listener_websocket.py"),
        ("cron_job.py", "run `hybridconn listen --path reports --echo`"),
    ],
)
def test_a_sender_without_a_connection_string_never_talks_to_itself(sample: str, advice: str) -> None:
    # Issue 19, item 4: a sender that started its own stand-in listener printed success.
    result = run_python([f"samples/{sample}"], child_env())
    assert result.returncode == 2
    assert result.stdout == ""
    assert "HYBRIDCONN_CONNECTION_STRING is not set" in result.stderr and advice in result.stderr


def test_cron_job_sends_its_report_to_the_cli_listener(start_process: StartProcess) -> None:
    listen = start_process(["-m", "hybridconn", "listen", "--path", "reports", "--echo", "--once"], child_env(),
                           merge_stderr=True)
    cs = listen.connection_string()
    listen.wait_for("Ctrl-C to stop")
    result = run_python(["samples/cron_job.py"], child_env(cs))
    assert result.returncode == 0, result.stderr
    assert "report sent: 200" in result.stdout
    assert listen.finish() == 0
    assert any("HTTP POST /reports" in line for line in listen.lines)


def test_cron_job_exits_nonzero_when_no_listener_is_online(relay_emulator: object) -> None:
    # The pytest plugin's emulator, in this process; nobody listens on its hybrid connection.
    cs = relay_emulator.connection_string("hc1")  # type: ignore[attr-defined]
    result = run_python(["samples/cron_job.py"], child_env(cs))
    assert result.returncode == 1
    assert "attempt 3: no listener online" in result.stderr
    assert "report not sent after 3 attempts" in result.stderr


# The listener samples are tested two ways. On their embedded emulator they serve a sender in
# another process and stop on Ctrl-C (SIGINT), as a user stops them. With --once they are
# pointed at this test's emulator (HYBRIDCONN_CONNECTION_STRING, the Azure path) and exit by
# themselves: an embedded emulator would stop with them, possibly before it has handed the
# last response to its sender.


def test_listener_http_on_its_emulator_serves_sender_http(start_process: StartProcess) -> None:
    listener = start_process(["samples/listener_http.py"], child_env())
    cs = listener.connection_string()
    listener.wait_for("listening")
    result = run_python(["samples/sender_http.py", "Ada"], child_env(cs))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 hello Ada"
    listener.wait_for("POST /greet (3 bytes)")
    listener.process.send_signal(signal.SIGINT)
    assert listener.finish() == 0


def test_listener_http_once_against_a_given_relay(start_process: StartProcess, relay_connection_string: str) -> None:
    listener = start_process(["samples/listener_http.py", "--once"], child_env(relay_connection_string))
    listener.wait_for("listening")
    result = run_python(["samples/sender_http.py", "Lin"], child_env(relay_connection_string))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 hello Lin"
    assert listener.finish() == 0
    assert not any("HYBRIDCONN_CONNECTION_STRING" in line for line in listener.lines)


def test_listener_websocket_on_its_emulator_serves_sender_websocket(start_process: StartProcess) -> None:
    listener = start_process(["samples/listener_websocket.py"], child_env())
    cs = listener.connection_string()
    listener.wait_for("listening")
    result = run_python(["samples/sender_websocket.py"], child_env(cs))
    assert result.returncode == 0, result.stderr
    assert "sent 'relay', got 'RELAY'" in result.stdout
    assert "binary round trip: b'\\x00\\x01binary'" in result.stdout
    line = listener.wait_for("connected: ")
    assert line.endswith(" /chat")
    listener.wait_for("closed: ")
    listener.process.send_signal(signal.SIGINT)
    assert listener.finish() == 0


def test_listener_websocket_once_against_a_given_relay(
    start_process: StartProcess, relay_connection_string: str
) -> None:
    listener = start_process(["samples/listener_websocket.py", "--once"], child_env(relay_connection_string))
    listener.wait_for("listening")
    result = run_python(["samples/sender_websocket.py"], child_env(relay_connection_string))
    assert result.returncode == 0, result.stderr
    assert "sent 'bye', got 'BYE'" in result.stdout
    assert listener.finish() == 0
    assert any(line.startswith("closed: ") and line.endswith("(1000)") for line in listener.lines)


def test_wsgi_app_on_its_emulator_answers_hybridconn_request(start_process: StartProcess) -> None:
    server = start_process(["samples/wsgi_app.py"], child_env())
    cs = server.connection_string()
    url = server.wait_for("serving ")
    assert "/hc1/hello" in url
    result = run_python(["-m", "hybridconn", "request", "GET", "/hello?name=Ada"], child_env(cs))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello Ada, from /hc1/hello\n"
    server.process.send_signal(signal.SIGINT)
    assert server.finish() == 0


def test_wsgi_app_once_against_a_given_relay(start_process: StartProcess, relay_connection_string: str) -> None:
    server = start_process(["samples/wsgi_app.py", "--once"], child_env(relay_connection_string))
    server.wait_for("serving ")
    result = run_python(
        ["-m", "hybridconn", "request", "POST", "/form", "-d", "b=2&a=1"], child_env(relay_connection_string)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a=1\nb=2\n"
    assert server.finish() == 0


NOTEBOOK_RUNNER = textwrap.dedent(
    """
    import json, sys
    notebook = json.load(open(sys.argv[1], encoding="utf-8"))
    namespace = {"__name__": "__main__"}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        print(f"--- cell {index}", flush=True)
        exec(compile(source, f"notebook.ipynb[cell {index}]", "exec"), namespace)
    print("--- all cells ran", flush=True)
    """
)


def test_notebook_code_cells_run_in_order() -> None:
    notebook = json.loads((SAMPLES / "notebook.ipynb").read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(code_cells) >= 4 and all(cell["outputs"] == [] for cell in code_cells), "commit the notebook cleared"
    result = run_python(["-c", NOTEBOOK_RUNNER, "samples/notebook.ipynb"], child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--- all cells ran" in result.stdout
    assert "200 {'words': 4}" in result.stdout
    assert "hello from a notebook" in result.stdout
    assert result.stdout.rstrip().endswith("online: False\n--- all cells ran")
