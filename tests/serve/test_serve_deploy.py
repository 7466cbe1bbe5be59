"""samples/deploy, tested where it can be here: the systemd unit verified and its commands run (with
sd_notify), the config file read, the Dockerfile's command and health check run (no image is built:
there is no Docker daemon or base image on this machine)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from hybridconn.emulator import RelayEmulator
from hybridconn.serving.sources import resolve
from tests.serve.conftest import Served
from tests.support.plain_clients import Sender
from tests.support.processes import REPO, child_env

DEPLOY = REPO / "samples" / "deploy"
UNIT = DEPLOY / "hybridconn.service"
DOCKERFILE = DEPLOY / "Dockerfile"
CONF = DEPLOY / "hybridconn.conf.py"


def _unit() -> Dict[str, str]:
    entries: Dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries[key.strip()] = value.strip()
    return entries


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "hybridconn"
    text = UNIT.read_text().replace("/srv/mysite/venv/bin/hybridconn", str(executable))
    unit = tmp_path / "hybridconn.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_units_commands_serve_reload_and_stop_with_sd_notify(relay: RelayEmulator, tmp_path: Path) -> None:
    unit = _unit()
    assert (unit["Type"], unit["KillMode"], unit["KillSignal"]) == ("notify", "mixed", "SIGTERM")
    argv = shlex.split(unit["ExecStart"])
    assert argv[1:3] == ["serve", "-c"] and argv[3] == "/etc/hybridconn/hybridconn.conf.py"
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    graceful = resolve({"config": str(CONF)}, {}).graceful_timeout
    assert float(unit["TimeoutStopSec"]) > graceful + 5  # systemd waits longer than a drain takes
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(60)
    env = child_env(relay.connection_string("hc1"))
    env.update(NOTIFY_SOCKET=str(notify), HYBRIDCONN_APP="serve_app", WEB_CONCURRENCY="2")
    process = Served(["-c", str(CONF), "--health-file", str(tmp_path / "health")], env)
    try:
        messages: List[str] = []

        def until(field: str) -> str:
            while True:
                message = listener.recv(4096).decode()
                messages.append(message)
                if field in message.split("\n"):
                    return message

        ready = until("READY=1")
        assert f"MAINPID={process.process.pid}" in ready
        assert Sender(relay).request("GET", "/").status_code == 200
        process.signal(signal.SIGHUP)  # ExecReload
        until("RELOADING=1")
        until("READY=1")
        process.signal(signal.SIGTERM)  # KillSignal, to the main process only (KillMode=mixed)
        until("STOPPING=1")
        assert process.wait(float(unit["TimeoutStopSec"])) == 0, process.describe()
    finally:
        listener.close()
        process.stop()


def test_the_config_file_reads_as_the_samples_say() -> None:
    config = resolve({"config": str(CONF)}, {"WEB_CONCURRENCY": "3"})
    assert (config.workers, config.threads, config.access_logfile, config.error_logfile) == (3, 16, "-", "-")
    assert (config.max_requests, config.max_requests_jitter, config.app) == (10000, 1000, "mysite.wsgi:application")


def _dockerfile() -> Dict[str, object]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: Dict[str, str] = {}
    found: Dict[str, object] = {"env": env, "copy": []}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif word == "CMD":
            found["cmd"] = json.loads(rest)
        elif word == "HEALTHCHECK":
            found["health"] = json.loads(rest.split("CMD", 1)[1])
        elif word == "COPY":
            found["copy"].append(rest.split()[0])  # type: ignore[union-attr]
        elif word == "STOPSIGNAL":
            found["stop"] = rest.strip()
    return found


def test_the_dockerfiles_command_serves_and_its_health_check_follows_it(relay: RelayEmulator, tmp_path: Path) -> None:
    docker = _dockerfile()
    assert (REPO / "samples/deploy/hybridconn.conf.py").is_file()  # the COPY source the image needs
    assert docker["stop"] == "SIGTERM" and docker["cmd"] == ["hybridconn", "serve"]
    env = child_env(relay.connection_string("hc1"))
    env.update(docker["env"])  # type: ignore[arg-type]
    health = tmp_path / "health"
    env.update(HYBRIDCONN_APP="serve_app", HYBRIDCONN_CONFIG=str(CONF), HYBRIDCONN_HEALTH_FILE=str(health))
    executable = str(Path(sys.executable).parent / "hybridconn")
    process = Served([], env)  # ``hybridconn serve``: everything from the image's environment
    probe = [sys.executable if word == "python" else word for word in docker["health"]]  # type: ignore[union-attr]
    probe[-1] = str(health)
    try:
        process.online()
        deadline = time.monotonic() + 30
        while subprocess.run(probe, cwd=REPO, env=env, timeout=60).returncode != 0:
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.2)
        assert Sender(relay).request("GET", "/").status_code == 200
        process.signal(signal.SIGTERM)
        assert process.wait(40) == 0
        assert subprocess.run(probe, cwd=REPO, env=env, timeout=60).returncode == 1
    finally:
        process.stop()
    assert os.path.basename(executable) == docker["cmd"][0]  # type: ignore[index]
