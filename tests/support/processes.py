"""Child processes as their users run them: ``python -m hybridconn ...``, a sample script, a Node peer.

:class:`ChildProcess` starts one, collects its output lines on reader threads, waits for a
line with a bounded wait and always stops it within a bounded time (terminate, then kill).
The ``start_process`` fixture (tests/conftest.py) stops every process a test started, so a
failing test leaks none. One-shot commands go through :func:`run_python` / :func:`run_cli`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
ENV_CS = "HYBRIDCONN_CONNECTION_STRING"
#: Seconds a child may take to start, print a line or exit: generous, for a loaded 2-core machine.
PROCESS_TIMEOUT = 60.0
#: Seconds a child gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 5.0
#: How many stderr lines a process keeps for failure messages.
STDERR_TAIL = 500


def child_env(connection_string: Optional[str] = None) -> Dict[str, str]:
    """This environment without a connection string (the embedded emulator), or with the given one."""
    env = {k: v for k, v in os.environ.items() if k != ENV_CS}
    env["PYTHONUNBUFFERED"] = "1"
    if connection_string:
        env[ENV_CS] = connection_string
    return env


def pasted(line: str, name: str = ENV_CS) -> str:
    """What ``$name`` holds after the printed ``line`` (``  export NAME='...'``) is pasted into ``sh``."""
    command = line.strip()
    assert command.startswith(f"export {name}="), f"not a paste-ready export line: {line!r}"
    result = subprocess.run(
        ["sh", "-c", f'{command}\nprintf %s "${name}"'], capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    assert result.returncode == 0 and result.stderr == "", (line, result.stderr)
    return result.stdout


def run_python(args: Sequence[str], env: Dict[str, str], stdin: str = "") -> "subprocess.CompletedProcess[str]":
    """``python ARGS...`` in the repository, to its end (bounded by :data:`PROCESS_TIMEOUT`)."""
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True,
        timeout=PROCESS_TIMEOUT,
    )


def run_cli(args: Sequence[str], env: Dict[str, str], stdin: str = "") -> "subprocess.CompletedProcess[str]":
    """``python -m hybridconn ARGS...`` to its end."""
    return run_python(["-m", "hybridconn", *args], env, stdin)


class ChildProcess:
    """A running child whose stdout lines are collected as they come (stderr too, or merged in).

    ``args`` follow ``program`` (the Python interpreter unless told): ``["-m", "hybridconn",
    "listen"]`` or ``["samples/listener_http.py"]``. With ``merge_stderr`` the two streams are one,
    in the order written (a CLI's log lines among its output). ``on_line`` sees every stdout line
    as it is read, under the lock :meth:`wait_until` waits with (see tests/support/node_peers.py).
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Optional[Dict[str, str]] = None,
        *,
        program: str = sys.executable,
        cwd: Union[str, "os.PathLike[str]"] = REPO,
        merge_stderr: bool = False,
        stdin_pipe: bool = False,
        on_line: Optional[Callable[[str], None]] = None,
        name: Optional[str] = None,
    ) -> None:
        words = [Path(arg).name for arg in args if arg != "-m"]
        #: What to call it in thread names and failure messages.
        self.name = name or " ".join(words[:2]) or Path(program).name
        #: Every stdout line so far, in order, without its line break.
        self.lines: List[str] = []
        self._stderr_tail: List[str] = []
        self._on_line = on_line
        self._changed = threading.Condition()
        self._stdout_done = False
        self._next_unseen = 0  # wait_for looks at lines from here on
        self.process = subprocess.Popen(
            [program, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
        self._readers = [threading.Thread(target=self._read_stdout, name=f"test-child-stdout-{self.name}", daemon=True)]
        if not merge_stderr:
            self._readers.append(
                threading.Thread(target=self._read_stderr, name=f"test-child-stderr-{self.name}", daemon=True)
            )
        for reader in self._readers:
            reader.start()

    # ------------------------------------------------------------------ output

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            for raw in self.process.stdout:
                line = raw.rstrip("\n")
                with self._changed:
                    self.lines.append(line)
                    if self._on_line is not None:
                        self._on_line(line)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._stdout_done = True
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self._stderr_tail.append(raw)
                del self._stderr_tail[:-STDERR_TAIL]

    @property
    def stderr(self) -> str:
        """What the child wrote on stderr so far (its last lines; empty when merged into stdout)."""
        with self._changed:
            return "".join(self._stderr_tail)

    @property
    def output_ended(self) -> bool:
        """The child closed its stdout (it exited, as a rule)."""
        with self._changed:
            return self._stdout_done

    def describe(self) -> str:
        """The child's exit status and output, for failure messages."""
        with self._changed:
            lines = list(self.lines[-50:])
        return f"{self.name} (exit code {self.process.poll()}); output: {lines}; stderr: {self.stderr[-3000:]!r}"

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait (bounded) until ``ready()`` is true, checked whenever a line arrives; False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                remaining = deadline - time.monotonic()
                if self._stdout_done or remaining <= 0:
                    return ready()
                self._changed.wait(min(remaining, 0.5))
            return True

    def wait_for(self, fragment: str, timeout: float = PROCESS_TIMEOUT) -> str:
        """The next stdout line containing ``fragment`` (after the last one found).

        Fails with the output if none comes.
        """
        found: List[str] = []

        def look() -> bool:
            while self._next_unseen < len(self.lines):
                line = self.lines[self._next_unseen]
                self._next_unseen += 1
                if fragment in line:
                    found.append(line)
                    return True
            return False

        if self.wait_until(look, timeout):
            return found[0]
        if self.output_ended:
            self.drain(2.0)  # so the message has all of stderr
            pytest.fail(f"exited ({self.wait(10)}) before printing {fragment!r}: {self.describe()}")
        pytest.fail(f"no {fragment!r} within {timeout} s: {self.describe()}")

    def connection_string(self) -> str:
        """The connection string from an ``export HYBRIDCONN_CONNECTION_STRING='...'`` line (an embedded
        emulator's), read back through a real shell: the line must work when pasted."""
        return pasted(self.wait_for(f"{ENV_CS}="), ENV_CS)

    # ------------------------------------------------------------------ input and ending

    def send_line(self, text: str) -> None:
        """Write one line to the child's stdin (``stdin_pipe=True``)."""
        assert self.process.stdin is not None, "started without stdin_pipe"
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:  # the child is gone already
                pass

    def wait(self, timeout: float) -> Optional[int]:
        """The exit code once the child has exited within ``timeout`` (its output read to the end, so
        what it printed last can be asserted on); None if it is still running."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.drain(10.0)
        return code

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """Wait for the child to exit by itself and for all its output; its exit code."""
        code = self.wait(timeout)
        if code is None:
            pytest.fail(f"still running after {timeout} s: {self.describe()}")
        self.drain(timeout)
        return code

    def interrupt(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """Ctrl-C (SIGINT), as a user stops a command; its exit code once it has exited."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.finish(timeout)
        finally:
            self.stop()

    def stop(self, grace: float = TERMINATE_GRACE) -> Optional[int]:
        """End the child now, whatever it is doing: SIGTERM, SIGKILL after ``grace`` s; pipes closed, readers joined."""
        self.close_stdin()
        if self.process.poll() is None:
            self.process.terminate()
            if self.wait(grace) is None:
                self.process.kill()
                self.wait(10.0)
        self.drain(10.0)
        if not any(reader.is_alive() for reader in self._readers):
            # Closing a pipe a reader is blocked on would block too (a grandchild may hold it open).
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()
        return self.process.returncode

    def drain(self, timeout: float) -> None:
        """Wait (bounded) until the reader threads have read the output to its end."""
        deadline = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


#: The ``start_process`` fixture: ``start_process(args, env, **options)`` -> a running ChildProcess.
StartProcess = Callable[..., ChildProcess]
