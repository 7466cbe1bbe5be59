"""Where settings come from and which wins; checks that fail before any worker starts; the embedded emulator."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Callable, Dict

import pytest
import requests

from hybridconn.emulator import RelayEmulator
from hybridconn.exceptions import ConfigurationError
from hybridconn.serving.embedded import embedded_emulator
from hybridconn.serving.settings import SETTINGS, ServeConfig
from hybridconn.serving.sources import describe, resolve
from tests.serve.conftest import Served
from tests.support.processes import child_env, run_cli

Serve = Callable[..., Served]


def _sources(config: ServeConfig) -> Dict[str, str]:
    return {name: config.sources[name] for name in ("workers", "threads", "graceful_timeout", "log_level")}


def test_the_command_line_beats_the_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "hybridconn.conf.py"
    conf.write_text("import os\nworkers = 3\nthreads = 5\ngraceful_timeout = 7\nloglevel = 'debug'\n"
                    "def on_starting(server): pass\n")
    config = resolve({"config": str(conf), "workers": "4"}, {"HYBRIDCONN_THREADS": "6", "HYBRIDCONN_WORKERS": "9"})
    assert (config.workers, config.threads, config.graceful_timeout, config.log_level) == (4, 6, 7.0, "debug")
    assert _sources(config) == {"workers": "command line", "threads": "HYBRIDCONN_THREADS",
                                "graceful_timeout": f"config file {conf}", "log_level": f"config file {conf}"}
    defaults = resolve({}, {})
    assert (defaults.workers, defaults.threads, defaults.graceful_timeout) == (1, 16, 30.0)


def test_web_concurrency_sets_workers_below_hybridconn_workers() -> None:
    assert resolve({}, {"WEB_CONCURRENCY": "3"}).workers == 3
    assert resolve({}, {"WEB_CONCURRENCY": "3", "HYBRIDCONN_WORKERS": "2"}).workers == 2


def test_the_default_config_file_is_read_from_the_current_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hybridconn.conf.py").write_text("workers = 2\naccesslog = '-'\npreload_app = True\n")
    monkeypatch.chdir(tmp_path)
    config = resolve({}, {})
    assert (config.workers, config.access_logfile, config.preload) == (2, "-", True)
    assert config.config == "hybridconn.conf.py"


def test_unknown_names_in_a_config_file_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = tmp_path / "c.py"
    conf.write_text("wrokers = 3\n_private = 1\n")
    resolve({"config": str(conf)}, {})
    assert "'wrokers' is not a setting" in caplog.text and "_private" not in caplog.text


@pytest.mark.parametrize("given, message", [
    ({"workers": "26"}, "--workers: 26 is outside 1..25"),
    ({"workers": "0"}, "outside 1..25"),
    ({"threads": "many"}, "--threads: invalid literal"),
    ({"graceful_timeout": "-1"}, "not a number of seconds"),
    ({"log_level": "loud"}, "is not one of debug"),
    ({"metrics": "9100"}, "is not HOST:PORT"),
])
def test_bad_values_are_refused_naming_their_source(given: Dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(given, {})


def test_a_bad_config_file_value_names_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "c.py"
    conf.write_text("timeout = 'soon'\n")
    with pytest.raises(ConfigurationError, match=f"^timeout in config file {conf}: could not convert"):
        resolve({"config": str(conf)}, {})


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^HYBRIDCONN_WORKERS: 30 is outside 1..25$"):
        resolve({}, {"HYBRIDCONN_WORKERS": "30"})


def test_print_config_hides_the_key_and_shows_sources() -> None:
    config = resolve({"workers": "2"}, {"HYBRIDCONN_CONNECTION_STRING":
                                        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;"
                                        "SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=hc"})
    text = "\n".join(describe(config))
    assert "c2VjcmV0LWtleQ==" not in text and "SharedAccessKey=<redacted>" in text
    assert "workers = 2  # command line" in text
    assert {line.split(" = ")[0] for line in describe(config)} == {s.name for s in SETTINGS if not s.cli_only}


def test_every_setting_has_its_field_and_the_same_default() -> None:
    fields = ServeConfig()
    for setting in SETTINGS:
        assert getattr(fields, setting.name) == setting.default, setting.name


def test_the_cli_refuses_more_than_25_workers_before_starting_anything() -> None:
    result = run_cli(["serve", "tests.serve.serve_app", "--workers", "26"], child_env())
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "hybridconn serve: error: --workers: 26 is outside 1..25")


def test_check_config_imports_the_app_and_exits() -> None:
    good = run_cli(["serve", "tests.serve.serve_app", "--check-config", "-w", "3"], child_env())
    assert good.returncode == 0 and "the configuration is valid (3 workers of tests.serve.serve_app)" in good.stdout
    bad = run_cli(["serve", "tests.serve.serve_app:missing", "--check-config"], child_env())
    assert bad.returncode != 0 and "has no attribute 'missing'" in bad.stderr


def test_a_missing_application_is_one_clear_line() -> None:
    env = child_env()
    env.pop("HYBRIDCONN_APP", None)
    result = run_cli(["serve"], env)
    assert result.returncode != 0 and "no application: give MODULE:APP" in result.stderr


def test_a_worker_that_cannot_start_stops_serve_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('cannot start: secret-detail')\n")
    env = child_env()
    result = run_cli(["serve", "broken_app", "--workers", "2"], dict(env, PYTHONPATH=str(tmp_path)))
    assert result.returncode != 0
    assert "the workers could not serve: RuntimeError: cannot start" in result.stderr


def test_the_embedded_emulator_keeps_its_port_and_falls_back_clearly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with embedded_emulator("hc1", port=port) as (first, note):
        assert f"127.0.0.1:{port}/" in first and note is None
        with embedded_emulator("hc1", port=port) as (second, taken):
            assert f"127.0.0.1:{port}/" not in second
            assert taken is not None and taken.startswith(f"port {port} is in use; the embedded relay emulator")


def test_serve_without_a_connection_string_says_when_9350_is_taken(serve: Serve) -> None:
    holder = socket.socket()
    try:
        # Hold the port ourselves; other test runs on this machine may hold it for a moment.
        deadline = time.monotonic() + 30
        while True:
            try:
                holder.bind(("127.0.0.1", 9350))
                holder.listen(1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    break  # held by something long-lived: the same fallback is expected
                time.sleep(0.2)
        env = child_env()
        process = Served(["serve_app"], env)
        try:
            process.wait_for("port 9350 is in use; the embedded relay emulator listens on port")
            process.online()
            url = next(line.split("URL: ")[1] for line in process.lines if "URL: " in line)
            assert ":9350/" not in url
            curl = next(line for line in process.lines if "Try it: curl" in line)
            header = curl.split("'")[1]
            name, _, value = header.partition(": ")
            assert requests.get(url, headers={name: value}, timeout=30).status_code == 200
            process.signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            process.stop()
    finally:
        holder.close()



def test_a_hybrid_connection_that_does_not_exist_stops_serve_with_the_relays_error(relay: RelayEmulator) -> None:
    env = child_env(relay.connection_string("hc1").replace("EntityPath=hc1", "EntityPath=nosuch"))
    result = run_cli(["serve", "tests.serve.serve_app", "--workers", "2"], env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hybridconn serve: error: the workers could not serve:") and "404" in last, last


def test_help_groups_the_options_as_gunicorn_does() -> None:
    result = run_cli(["serve", "--help"], child_env())
    assert result.returncode == 0
    headings = [line[:-1] for line in result.stdout.splitlines() if line and not line.startswith(" ")
                and line.endswith(":")]
    assert headings[-6:] == ["Relay", "Config File", "Worker Processes", "Server Mechanics", "Logging",
                             "Metrics and Health"]
    for flag in ("--workers", "--threads", "--graceful-timeout", "--access-logfile", "--access-logformat",
                 "--error-logfile", "--log-level", "--preload", "--max-requests", "--config", "--timeout"):
        assert flag in result.stdout, flag
