"""Helpers to run samples as their users do: separate Python processes, against an embedded emulator."""

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
SAMPLES = REPO / "samples"
ENV_CS = "HYBRIDCONN_CONNECTION_STRING"
PROCESS_TIMEOUT = 60.0


def sample_env(connection_string: Optional[str] = None) -> Dict[str, str]:
    """The environment without a connection string (the embedded default), or with the given one."""
    env = {k: v for k, v in os.environ.items() if k != ENV_CS}
    env["PYTHONUNBUFFERED"] = "1"
    if connection_string:
        env[ENV_CS] = connection_string
    return env


def run_python(argv: List[str], env: Dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


class Background:
    """A running process whose stdout lines are collected by a reader thread."""

    def __init__(self, argv: List[str], env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="test-sample-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, fragment: str, timeout: float = PROCESS_TIMEOUT) -> str:
        """The first stdout line containing ``fragment``; fails with all output seen if it never comes."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = ""
                if remaining <= 0:
                    pytest.fail(f"no {fragment!r} within {timeout} s; output so far: {self.lines}")
                continue
            if line is None:
                pytest.fail(f"exited ({self.process.wait()}) before printing {fragment!r}: {self.lines} {self.stderr()}")
            self.lines.append(line)
            if fragment in line:
                return line

    def connection_string(self) -> str:
        line = self.wait_for(f"{ENV_CS}=")
        return line.split("=", 1)[1].strip().strip("'")

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return code

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
