"""Child processes for bench/run.py: start a role, read its ready line, its CPU time and RSS."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
NODE = shutil.which("node")
NODE_MODULES = os.path.join(ROOT, "tests", "interop", "node_modules")
_TICK = os.sysconf("SC_CLK_TCK")


def node_skip_reason() -> Optional[str]:
    """Why the hyco-* rows cannot run, or None."""
    if NODE is None:
        return "node is not on PATH"
    for package in ("hyco-ws", "hyco-https"):
        if not os.path.isfile(os.path.join(NODE_MODULES, package, "package.json")):
            return f"tests/interop/node_modules/{package} is missing (run `cd tests/interop && npm ci`)"
    return None


class Proc:
    """A role process; ``info`` is the JSON of its first stdout line. Closing stdin stops it."""

    def __init__(self, name: str, argv: Sequence[str], env: Optional[Dict[str, str]] = None,
                 ready_timeout: float = 60.0) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            list(argv), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, **(env or {})),
        )
        self._stderr: List[str] = []
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._pump_stdout, name=f"bench-{name}-stdout", daemon=True).start()
        threading.Thread(target=self._pump_stderr, name=f"bench-{name}-stderr", daemon=True).start()
        try:
            line = self._lines.get(timeout=ready_timeout)
        except queue.Empty:
            line = None
        if not line:
            self.close()
            raise RuntimeError(f"{name} did not start; stderr:\n{''.join(self._stderr)[-3000:]}")
        self.info: Dict[str, Any] = json.loads(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace").strip())
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace"))
            del self._stderr[:-200]

    def cpu(self) -> float:
        """User + system CPU seconds of the process so far (10 ms ticks)."""
        return cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def close(self, timeout: float = 15.0) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def python_role(name: str, *args: str) -> Proc:
    return Proc(name, [sys.executable, os.path.join(BENCH_DIR, "roles.py"), *args])


def node_role(name: str, script: str, *args: str) -> Proc:
    assert NODE is not None
    return Proc(name, [NODE, os.path.join(BENCH_DIR, "node_peers", script), *args],
                env={"NODE_PATH": NODE_MODULES})
