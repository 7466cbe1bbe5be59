"""Background traffic that classifies every outcome, and a relayed WebSocket kept busy.

For the reliability tests: while faults hit the relay or the listener, :class:`Traffic` keeps
sending and counts each result as ok, a clean typed failure, or bad (wrong bytes, an untyped
error, a hang).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from hybridconn import HybridConnectionClient, HybridConnectionError

#: Seconds a single sender operation may take before it counts as hung (far above any configured timeout).
HANG_DEADLINE = 45.0


@dataclass
class Outcomes:
    """Every sender operation, classified. ``bad`` must stay empty: wrong bytes, untyped errors, hangs."""

    ok: int = 0
    clean: Dict[str, int] = field(default_factory=dict)
    bad: List[str] = field(default_factory=list)
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_ok(self, elapsed: float) -> None:
        with self.lock:
            self.ok += 1
            self.slowest = max(self.slowest, elapsed)

    def record_clean(self, what: str, elapsed: float) -> None:
        with self.lock:
            self.clean[what] = self.clean.get(what, 0) + 1
            self.slowest = max(self.slowest, elapsed)

    def record_bad(self, what: str) -> None:
        with self.lock:
            self.bad.append(what)

    @property
    def failed_cleanly(self) -> int:
        return sum(self.clean.values())

    def summary(self) -> str:
        return (f"ok={self.ok} failed_cleanly={self.failed_cleanly} {dict(sorted(self.clean.items()))} "
                f"bad={len(self.bad)} slowest={self.slowest:.2f}s")


def _classify_error(exc: BaseException) -> Optional[str]:
    """The name of a clean, typed failure; None for anything else."""
    if isinstance(exc, HybridConnectionError):
        return type(exc).__name__
    return None


class Traffic:
    """Threads sending HTTP requests and short WebSocket sessions until stopped; each outcome classified.

    A clean failure is a typed hybridconn error (502/503/504 become ListenerUnavailableError or
    RelayTimeoutError) or a listener-side 503; an answer with the wrong bytes, an untyped
    exception or an operation that outlives :data:`HANG_DEADLINE` is bad.
    """

    def __init__(self, client: HybridConnectionClient, http_threads: int = 2, ws_threads: int = 1,
                 http_timeout: Tuple[float, float] = (10.0, 30.0), seed: int = 0) -> None:
        self.client = client
        self.http = Outcomes()
        self.ws = Outcomes()
        self._stop = threading.Event()
        self._timeout = http_timeout
        self._threads = [threading.Thread(target=self._http_loop, args=(n, seed), name=f"test-http-{n}", daemon=True)
                         for n in range(http_threads)]
        self._threads += [threading.Thread(target=self._ws_loop, args=(n, seed), name=f"test-ws-{n}", daemon=True)
                          for n in range(ws_threads)]

    def start(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = HANG_DEADLINE + 15) -> List[str]:
        """Stop and join; returns the names of threads still running (hung)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self._threads if t.is_alive()]

    def _http_loop(self, n: int, seed: int) -> None:
        rng = random.Random(seed * 1000 + n)
        number = 0
        while not self._stop.is_set():
            number += 1
            size = rng.choice((0, 10, 1000, 70_000)) if number % 7 else 200_000  # some go by rendezvous
            body = rng.randbytes(size) if hasattr(rng, "randbytes") else os.urandom(size)
            suffix = f"/t{n}/{number}"
            # Every third request ends its TCP connection: the next one is routed over the control
            # channel again instead of the sender's rendezvous link, which outlives control channels.
            headers = {"Connection": "close"} if number % 3 == 0 else None
            started = time.monotonic()
            try:
                response = self.client.request("POST", suffix, data=body, headers=headers, timeout=self._timeout)
            except BaseException as exc:  # noqa: BLE001 - classified below
                self._failed(self.http, exc, started, f"http {suffix}")
                continue
            elapsed = time.monotonic() - started
            if elapsed > HANG_DEADLINE:
                self.http.record_bad(f"http {suffix} took {elapsed:.1f}s")
            elif response.status_code == 200 and response.content == suffix.encode() + b"|" + body:
                self.http.record_ok(elapsed)
            elif response.status_code == 503:  # the listener's own "busy/closing" answer
                self.http.record_clean("listener-503", elapsed)
            else:
                self.http.record_bad(f"http {suffix}: {response.status_code} {len(response.content)} bytes")

    def _ws_loop(self, n: int, seed: int) -> None:
        rng = random.Random(seed * 1000 + 500 + n)
        number = 0
        while not self._stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                with self.client.connect(timeout=10) as conn:
                    for turn in range(5):
                        message: Any = (
                            rng.randbytes(rng.choice((1, 100, 5000))) if turn % 2 else f"m{n}-{number}-{turn}"
                        )
                        conn.send(message)
                        if conn.recv(timeout=10) != message:
                            self.ws.record_bad(f"ws {n}/{number}: echo mismatch")
                            break
            except BaseException as exc:  # noqa: BLE001 - classified below
                self._failed(self.ws, exc, started, f"ws {n}/{number}")
                continue
            elapsed = time.monotonic() - started
            if elapsed > HANG_DEADLINE:
                self.ws.record_bad(f"ws {n}/{number} took {elapsed:.1f}s")
            else:
                self.ws.record_ok(elapsed)

    def _failed(self, outcomes: Outcomes, exc: BaseException, started: float, what: str) -> None:
        self._stop.wait(0.02)  # as a real sender would, don't spin while the listener is away
        elapsed = time.monotonic() - started
        kind = _classify_error(exc)
        if kind is None:
            outcomes.record_bad(f"{what}: untyped {type(exc).__name__}: {exc}")
        elif elapsed > HANG_DEADLINE:
            outcomes.record_bad(f"{what}: {kind} after {elapsed:.1f}s")
        else:
            outcomes.record_clean(kind, elapsed)


class PersistentSocket:
    """One relayed WebSocket kept open, exchanging a message every ``interval`` seconds.

    Rendezvous sockets do not depend on the control channel, so it must survive every fault
    that only hits the control channel.
    """

    def __init__(self, client: HybridConnectionClient, name: str, interval: float = 0.05) -> None:
        self.conn = client.connect(timeout=15)
        self.exchanged = 0
        self.error: Optional[BaseException] = None
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(name,), name=f"test-persistent-{name}", daemon=True)
        self._thread.start()

    def _run(self, name: str) -> None:
        try:
            while not self._stop.wait(self._interval):
                message = f"{name}-{self.exchanged}"
                self.conn.send(message)
                if self.conn.recv(timeout=15) != message:
                    raise AssertionError(f"echo mismatch on {name} after {self.exchanged} messages")
                self.exchanged += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.conn.close(timeout=5)
