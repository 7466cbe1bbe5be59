"""SIGHUP and --max-requests under continuous traffic: new workers first, old ones drained, no request fails."""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable, Dict, List, Set

import requests

from tests.serve.conftest import Served
from tests.support.plain_clients import Sender

Serve = Callable[..., Served]
SENDERS = 4
MAX_SECONDS = 60.0  # the traffic stops by itself


class Traffic:
    """Keep-alive senders requesting ``/`` back to back until stopped; every outcome counted."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.ok = 0
        self.failures: List[str] = []
        self.pids: Set[int] = set()
        self._threads = [threading.Thread(target=self._run, name=f"test-traffic-{n}", daemon=True)
                         for n in range(SENDERS)]

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = self._sender.request("GET", "/", session=session, timeout=30)
                    outcome = None if response.status_code == 200 else f"{response.status_code} {response.text[:80]}"
                except requests.RequestException as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if outcome is None:
                        self.ok += 1
                        self.pids.add(int(response.content))
                    else:
                        self.failures.append(outcome)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        start = self.ok
        while self.ok < start + count and time.monotonic() < deadline:
            time.sleep(0.02)

    def snapshot(self) -> Dict[str, object]:
        with self._lock:
            return {"ok": self.ok, "failures": list(self.failures), "pids": set(self.pids)}


def test_sighup_reloads_with_zero_failed_requests(serve: Serve, sender: Sender) -> None:
    process = serve("serve_app", "--workers", "2", "--graceful-timeout", "10")
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    old = set(process.worker_pids())
    with Traffic(sender) as traffic:
        traffic.wait_for(100)
        process.signal(signal.SIGHUP)
        process.wait_count(r"worker \d+ \(pid \d+\) is online", 4)
        process.wait_count(r"exited \(0\)", 2)
        before = traffic.snapshot()["ok"]
        traffic.wait_for(100)
    result = traffic.snapshot()
    new = set(process.worker_pids()) - old
    assert result["failures"] == [], result["failures"][:5]
    assert len(new) == 2 and new <= result["pids"], (new, result["pids"])
    assert result["ok"] > before  # the new generation served after the old one left
    assert process.count("SIGHUP: reloading") == 1
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0, process.describe()


def test_max_requests_replaces_a_worker_with_zero_failed_requests(serve: Serve, sender: Sender) -> None:
    process = serve("serve_app", "--workers", "2", "--max-requests", "150", "--max-requests-jitter", "20")
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    with Traffic(sender) as traffic:
        process.wait_count(r"asking to be replaced", 1, timeout=60)
        process.wait_count(r"exited \(0\)", 1)
        traffic.wait_for(50)
    result = traffic.snapshot()
    assert result["failures"] == [], result["failures"][:5]
    assert len(process.worker_pids()) >= 3
