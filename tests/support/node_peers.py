"""Run Microsoft's Node clients (the peer programs in ``peers/``) as subprocesses.

A long-running peer talks JSON lines: events on its stdout, commands on its stdin;
closing its stdin makes it exit. One-shot peers (tokens, the HTTP sender) read one
JSON document on stdin and write their answer on stdout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

from tests.support.processes import REPO, ChildProcess

INTEROP_DIR = REPO / "tests" / "interop"
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


def refresh() -> None:
    """Check again, after tests.support.interop_setup installed the packages (before the modules import this)."""
    global SKIP_REASON, requires_node
    SKIP_REASON = _skip_reason()
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
        #: Every event so far; ``wait_for`` takes from those not taken yet.
        self.history: List[Event] = []
        self._pending: List[Event] = []
        self.child = ChildProcess(
            [str(PEERS_DIR / script), *args], dict(os.environ, **(env or {})), program=NODE, cwd=INTEROP_DIR,
            stdin_pipe=True, on_line=self._on_line, name=script,
        )

    def _on_line(self, line: str) -> None:
        """Called by the child's reader, under the lock ``child.wait_until`` waits with."""
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = {"event": "stdout", "text": line.strip()}
        self.history.append(event)
        self._pending.append(event)

    @property
    def stderr(self) -> str:
        return self.child.stderr

    def describe(self) -> str:
        events = [_short(e) for e in self.history[-30:]]
        return (
            f"{self.script} (exit code {self.child.process.poll()}); last events: {events}; "
            f"stderr tail:\n{self.stderr[-3000:]}"
        )

    # -- driving -------------------------------------------------------------------------

    def send(self, **command: Any) -> None:
        self.child.send_line(json.dumps(command))

    def wait_for(self, name: str, timeout: float = 15.0, where: Optional[Callable[[Event], bool]] = None) -> Event:
        """Take the first not yet taken event called ``name`` (and matching ``where``)."""
        taken: List[Event] = []

        def take() -> bool:
            for index, event in enumerate(self._pending):
                if event.get("event") == name and (where is None or where(event)):
                    taken.append(self._pending.pop(index))
                    return True
            return False

        if self.child.wait_until(take, timeout):
            return taken[0]
        if self.child.output_ended:
            self.child.drain(2)  # give a dying process a moment so its stderr is complete in the message
        raise AssertionError(f"no {name!r} event within {timeout} s from {self.describe()}")

    def wait_for_count(self, name: str, count: int, timeout: float = 15.0) -> List[Event]:
        """All ``name`` events seen so far, once there are at least ``count``.

        The peer prints an event before the action it reports reaches anyone, but our
        reader thread may not have taken it off the pipe yet: wait, don't just look.
        """
        self.child.wait_until(lambda: len(self.events(name)) >= count, timeout)
        found = self.events(name)
        assert len(found) >= count, f"{len(found)} of {count} {name!r} events within {timeout} s from {self.describe()}"
        return found

    def events(self, name: str) -> List[Event]:
        return [e for e in list(self.history) if e.get("event") == name]

    def assert_alive(self) -> None:
        assert self.child.process.poll() is None, f"peer died: {self.describe()}"

    def close(self, timeout: float = 5.0) -> Optional[int]:
        """Ask the peer to exit (stdin EOF), stop it if it does not within ``timeout``, and reap it."""
        self.child.close_stdin()
        self.child.wait(timeout)
        return self.child.stop()

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
    data = as_bytes(message)
    return {"binary": not isinstance(message, str), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def send_command(message: Any) -> Dict[str, str]:
    """The peers' ``send`` command fields for a str (text) or bytes (binary) message."""
    return {"text": message} if isinstance(message, str) else {"b64": b64(message)}


def event_message(event: Event) -> Any:
    """A peer's full ``message`` event (ws_sender.js) back as str or bytes."""
    return unb64(event["b64"]) if event["binary"] else event["text"]
