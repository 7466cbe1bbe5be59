"""Fixtures for `hybridconn serve` in real processes: the emulator in this process, serve in a child."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import Sender
from tests.support.processes import ChildProcess, child_env

HERE = Path(__file__).resolve().parent
STARTUP = 90.0


class Served(ChildProcess):
    """``python -m hybridconn serve serve_app ...`` in tests/serve, its stderr merged into its stdout."""

    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        super().__init__(["-m", "hybridconn", "serve", *args], env, cwd=HERE, merge_stderr=True, name="serve")

    def online(self, timeout: float = STARTUP) -> None:
        self.wait_for("Ctrl-C to stop", timeout)

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._changed:
            return sum(1 for line in self.lines if regex.search(line))

    def wait_count(self, pattern: str, count: int, timeout: float = STARTUP) -> None:
        if not self.wait_until(lambda: self.count(pattern) >= count, timeout):
            pytest.fail(f"fewer than {count} lines matching {pattern!r}: {self.describe()}")

    def worker_pids(self) -> List[int]:
        with self._changed:
            return [int(m.group(1)) for line in self.lines for m in [re.search(r"booting worker \d+ \(pid (\d+)", line)]
                    if m]

    def signal(self, number: int) -> None:
        self.process.send_signal(number)


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"]}


@pytest.fixture
def serve(relay: RelayEmulator, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(*args, env=None)``: start serve on the test's emulator (hc1), stopped after the test."""
    started: List[Served] = []

    def start(*args: str, env: Optional[Dict[str, str]] = None, connection_string: Optional[str] = None) -> Served:
        environment = child_env(connection_string or relay.connection_string("hc1"))
        environment["SERVE_TEST_MARKS"] = str(tmp_path / "marks")
        environment.update(env or {})
        process = Served(list(args), environment)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.signal(signal.SIGQUIT)
            process.wait(10)
        process.stop()


@pytest.fixture
def sender(relay: RelayEmulator) -> Iterator[Sender]:
    s = Sender(relay)
    yield s
    s.close()


def wait_for_marks(path: Path, count: int, timeout: float = 30.0) -> bool:
    """Until ``count`` slow requests have started (each appends a line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return True
        time.sleep(0.05)
    return False


def get(sender: Sender, suffix: str, session: Optional[requests.Session] = None, **kwargs: Any) -> requests.Response:
    return sender.request("GET", suffix, session=session, **kwargs)


def env_without(*names: str) -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
