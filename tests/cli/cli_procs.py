"""A CLI process in the background whose output lines (stdout and stderr, merged) are collected."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV_CS = "HYBRIDCONN_CONNECTION_STRING"
TIMEOUT = 60.0


def cli_env(connection_string: Optional[str] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_CS}
    env["PYTHONUNBUFFERED"] = "1"
    if connection_string:
        env[ENV_CS] = connection_string
    return env


def run_cli(args: List[str], env: Dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hybridconn", *args],
        cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
    )


class CliProcess:
    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hybridconn", *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="test-cli-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, fragment: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {fragment!r} within {timeout} s; output: {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"exited ({self.process.wait()}) before printing {fragment!r}: {self.lines}")
            self.lines.append(line)
            if fragment in line:
                return line

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
