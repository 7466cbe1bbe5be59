"""--metrics scraped and parsed, /health, --health-file and the pid file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable, Dict

import pytest
import requests

from tests.serve.conftest import Served
from tests.support.plain_clients import Sender

prometheus_parser = pytest.importorskip("prometheus_client.parser")

Serve = Callable[..., Served]


def _scrape(url: str) -> Dict[str, float]:
    text = requests.get(url, timeout=10).text
    values: Dict[str, float] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_metrics_are_scraped_and_parsed(serve: Serve, sender: Sender) -> None:
    process = serve("serve_app", "--workers", "2", "--metrics", "127.0.0.1:0")
    line = process.wait_for("metrics on http://")
    url = line.rsplit(" ", 1)[1]
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    with requests.Session() as session:
        for _ in range(7):
            assert sender.request("GET", "/", session=session).status_code == 200
        assert sender.request("GET", "/boom", session=session).status_code == 500
    assert _wait(lambda: _scrape(url).get('hybridconn_requests_total{status=200}') == 7), _scrape(url)
    values = _scrape(url)
    assert values["hybridconn_requests_total{status=500}"] == 1
    assert values["hybridconn_request_duration_seconds_count"] == 8
    assert values["hybridconn_request_duration_seconds_bucket{le=+Inf}"] == 8
    assert values["hybridconn_listeners_online"] == 2 and values["hybridconn_workers"] == 2
    assert values["hybridconn_requests_in_flight"] == 0 and values["hybridconn_request_queue_depth"] == 0
    assert values["hybridconn_busy_responses_total"] == 0 and values["hybridconn_reconnects_total"] == 0
    assert "hybridconn_rendezvous_sockets" in values and values["hybridconn_worker_restarts_total"] == 0
    health = requests.get(url.replace("/metrics", "/health"), timeout=10)
    assert (health.status_code, health.text.strip()) == (200, "online (2 listeners)")
    # A killed worker: its counts stay in the totals, the restart is counted.
    os.kill(process.worker_pids()[0], signal.SIGKILL)
    assert _wait(lambda: _scrape(url).get("hybridconn_worker_restarts_total") == 1)
    assert _scrape(url)["hybridconn_requests_total{status=200}"] == 7  # the dead worker's counts are kept
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0


def test_metrics_without_prometheus_client_fail_clearly(tmp_path: Path) -> None:
    from tests.support.processes import child_env, run_cli

    env = child_env()
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "prometheus_client.py").write_text("raise ImportError('blocked for this test')\n")
    env["PYTHONPATH"] = str(blocker)
    result = run_cli(["serve", "tests.serve.serve_app", "--metrics", "127.0.0.1:0"], env)
    assert result.returncode != 0
    assert "pip install 'hybridconn[metrics]'" in result.stderr


def test_health_file_and_pid_file_live_while_serving(serve: Serve, tmp_path: Path) -> None:
    health, pidfile = tmp_path / "health", tmp_path / "serve.pid"
    process = serve("serve_app", "--health-file", str(health), "--pid", str(pidfile))
    process.online()
    assert _wait(health.exists)
    assert int(pidfile.read_text()) == process.process.pid
    from hybridconn.serving.health import main as probe

    assert probe([str(health)]) == 0
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not health.exists() and not pidfile.exists()
    assert probe([str(health)]) == 1
