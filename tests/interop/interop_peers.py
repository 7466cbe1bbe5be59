"""Run Microsoft's Node clients (the peer programs in ``peers/``) as subprocesses.

A long-running peer talks JSON lines: events on its stdout, commands on its stdin;
closing its stdin makes it exit. One-shot peers (tokens, the HTTP sender) read one
JSON document on stdin and write their answer on stdout.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
PEERS_DIR = INTEROP_DIR / "peers"
NODE = shutil.which("node")

Event = Dict[str, Any]


def _skip_reason() -> Optional[str]:
    if NODE is None:
        return "node is not on PATH: the Node interop peers (hyco-ws, hyco-https) cannot run"
    for package in ("hyco-ws", "hyco-https"):
        if not (INTEROP_DIR / "node_modules" / package / "package.json").is_file():
            return f"tests/interop/node_modules/{package} is missing: run `cd tests/interop && npm ci`"
    return None


SKIP_REASON = _skip_reason()
#: Every interop module carries ``pytestmark = [pytest.mark.interop, requires_node]``.
requires_node = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def run_node(script: str, args: Sequence[str] = (), stdin: Any = None, timeout: float = 30.0) -> str:
    """Run a one-shot peer; returns its stdout. Fails the test with its stderr on error."""
    assert NODE is not None
    payload = json.dumps(stdin) if stdin is not None else ""
    try:
        done = subprocess.run(
            [NODE, str(PEERS_DIR / script), *args],
            cwd=str(INTEROP_DIR),
            input=payload.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} did not finish within {timeout} s; stderr: {exc.stderr!r:.2000}")
    if done.returncode != 0:
        pytest.fail(f"{script} exited {done.returncode}; stderr:\n{done.stderr.decode('utf-8', 'replace')[-4000:]}")
    return done.stdout.decode("utf-8")


def run_node_events(script: str, args: Sequence[str] = (), stdin: Any = None, timeout: float = 30.0) -> List[Event]:
    """Run a one-shot peer that prints JSON-line events; returns the events."""
    return [json.loads(line) for line in run_node(script, args, stdin, timeout).splitlines() if line.strip()]


class NodePeer:
    """A long-running Node peer. Use as a context manager; ``close()`` always reaps it."""

    def __init__(self, script: str, args: Sequence[str] = (), env: Optional[Dict[str, str]] = None) -> None:
        assert NODE is not None
        self.script = script
        self.history: List[Event] = []
        self._pending: List[Event] = []
        self._stderr: List[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            [NODE, str(PEERS_DIR / script), *args],
            cwd=str(INTEROP_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, **(env or {})),
        )
        self._threads = [
            threading.Thread(target=self._read_stdout, name=f"interop-{script}-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"interop-{script}-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- pipes -------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "stdout", "text": line}
            with self._cond:
                self.history.append(event)
                self._pending.append(event)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self._stderr.append(raw.decode("utf-8", "replace"))
                del self._stderr[:-200]

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    def describe(self) -> str:
        with self._cond:
            events = [_short(e) for e in self.history[-30:]]
        return (
            f"{self.script} (exit code {self.proc.poll()}); last events: {events}; "
            f"stderr tail:\n{self.stderr[-3000:]}"
        )

    # -- driving -------------------------------------------------------------------------

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def wait_for(self, name: str, timeout: float = 15.0, where: Optional[Callable[[Event], bool]] = None) -> Event:
        """Take the first not yet taken event called ``name`` (and matching ``where``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in enumerate(self._pending):
                    if event.get("event") == name and (where is None or where(event)):
                        del self._pending[index]
                        return event
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
        # Give a dying process a moment so its stderr is complete in the message.
        if self._eof:
            self._threads[1].join(2)
        raise AssertionError(f"no {name!r} event within {timeout} s from {self.describe()}")

    def wait_for_count(self, name: str, count: int, timeout: float = 15.0) -> List[Event]:
        """All ``name`` events seen so far, once there are at least ``count``.

        The peer prints an event before the action it reports reaches anyone, but our
        reader thread may not have taken it off the pipe yet: wait, don't just look.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.history if e.get("event") == name]
                remaining = deadline - time.monotonic()
                if len(found) >= count or self._eof or remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
        assert len(found) >= count, f"{len(found)} of {count} {name!r} events within {timeout} s from {self.describe()}"
        return found

    def events(self, name: str) -> List[Event]:
        with self._cond:
            return [e for e in self.history if e.get("event") == name]

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"peer died: {self.describe()}"

    def close(self, timeout: float = 5.0) -> Optional[int]:
        """Ask the peer to exit (stdin EOF), kill it if it does not, and reap it."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode

    def __enter__(self) -> "NodePeer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _short(event: Event) -> Event:
    """An event without its (possibly megabyte) payload, for failure messages."""
    return {k: (v if not isinstance(v, str) or len(v) < 200 else f"<{len(v)} chars>") for k, v in event.items()}


def peer_args(**options: str) -> List[str]:
    """``--name value`` arguments for a peer, with the emulator's default key.

    ``peer_args(uri=..., token_in="query")`` -> ``--key-name .. --key .. --uri .. --token-in query``.
    """
    from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME

    options.setdefault("key_name", DEFAULT_KEY_NAME)
    options.setdefault("key", DEFAULT_KEY)
    args: List[str] = []
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), value]
    return args


def pattern(size: int) -> bytes:
    """The bytes https_listener.js's /big and /stream routes produce: (i * 31 + 7) & 0xff."""
    return bytes((i * 31 + 7) & 0xFF for i in range(size)) if size < 4096 else _pattern_fast(size)


def _pattern_fast(size: int) -> bytes:
    period = bytes((i * 31 + 7) & 0xFF for i in range(256))  # the sequence repeats every 256 bytes
    return (period * (size // 256 + 1))[:size]


def text_payload(size: int) -> str:
    """A str whose UTF-8 encoding is exactly ``size`` bytes, with multi-byte characters in it."""
    unit = "relay \u2713 h\u00e9llo \U0001f310 "
    encoded = (unit * (size // len(unit.encode("utf-8")) + 1)).encode("utf-8")[:size]
    text = encoded.decode("utf-8", "ignore")
    return text + "x" * (size - len(text.encode("utf-8")))


def binary_payload(size: int) -> bytes:
    """``size`` bytes covering every byte value (not valid UTF-8)."""
    return bytes(((i * 131) ^ (i >> 8)) & 0xFF for i in range(min(size, 65536))) * (size // 65536) + bytes(
        ((i * 131) ^ (i >> 8)) & 0xFF for i in range(size % 65536)
    )


def payload(kind: str, size: int) -> Any:
    return text_payload(size) if kind == "text" else binary_payload(size)


def as_bytes(message: Any) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)


def digest(message: Any) -> Dict[str, Any]:
    """Type, size and SHA-256 of a message: what the assertions compare (readable on failure)."""
    import hashlib

    data = as_bytes(message)
    return {"binary": not isinstance(message, str), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def send_command(message: Any) -> Dict[str, str]:
    """The peers' ``send`` command fields for a str (text) or bytes (binary) message."""
    return {"text": message} if isinstance(message, str) else {"b64": b64(message)}


def event_message(event: Event) -> Any:
    """A peer's full ``message`` event (ws_sender.js) back as str or bytes."""
    return unb64(event["b64"]) if event["binary"] else event["text"]
