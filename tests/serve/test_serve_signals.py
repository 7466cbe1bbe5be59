"""Graceful SIGTERM, the graceful timeout, a second SIGINT, a killed worker: real processes, real signals."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import requests

from tests.serve.conftest import Served, get, wait_for_marks
from tests.support.plain_clients import Sender

Serve = Callable[..., Served]


def test_sigterm_answers_every_request_in_flight_and_exits_within_the_bound(
    serve: Serve, sender: Sender, tmp_path: Path
) -> None:
    process = serve("serve_app", "--workers", "2", "--threads", "8", "--graceful-timeout", "20")
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    with ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(get, sender, "/slow?s=2") for _ in range(6)]
        assert wait_for_marks(tmp_path / "marks", 6), process.describe()
        begun = time.monotonic()
        process.signal(signal.SIGTERM)
        answers = [future.result(timeout=60) for future in slow]
        assert process.wait(30) == 0, process.describe()
        took = time.monotonic() - begun
    assert [(a.status_code, a.content) for a in answers] == [(200, b"slow done")] * 6
    assert took < 20 + 5, took
    # Both workers drained and left the relay before their requests were answered.
    assert process.count(r"left the relay") == 2
    assert process.count(r"exited \(0\)") == 2


def test_requests_outliving_the_graceful_timeout_are_answered_503(serve: Serve, sender: Sender, tmp_path: Path) -> None:
    process = serve("serve_app", "--graceful-timeout", "2")
    process.online()
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(get, sender, "/slow?s=30") for _ in range(2)]
        assert wait_for_marks(tmp_path / "marks", 2), process.describe()
        begun = time.monotonic()
        process.signal(signal.SIGTERM)
        answers = [future.result(timeout=60) for future in slow]
        code = process.wait(30)
        took = time.monotonic() - begun
    assert [a.status_code for a in answers] == [503, 503]
    assert all("closing" in a.text for a in answers)
    assert code == 0, process.describe()
    assert took < 2 + 6, took  # the graceful timeout, then closing: bounded


def test_a_second_sigint_ends_at_once(serve: Serve, sender: Sender, tmp_path: Path) -> None:
    process = serve("serve_app", "--graceful-timeout", "60")
    process.online()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, sender, "/slow?s=60")
        assert wait_for_marks(tmp_path / "marks", 1), process.describe()
        begun = time.monotonic()
        process.signal(signal.SIGINT)
        process.wait_count(r"SIGINT: draining", 1, timeout=30)
        process.signal(signal.SIGINT)
        code = process.wait(20)
        took = time.monotonic() - begun
        try:
            outcome = slow.result(timeout=60).status_code
        except requests.RequestException:
            outcome = None  # cut off: that is what a second Ctrl-C is for
    assert code is not None and took < 15, (took, process.describe())
    assert outcome != 200
    assert process.count("stopping at once") >= 1


def test_a_killed_worker_is_replaced(serve: Serve, sender: Sender) -> None:
    process = serve("serve_app", "--workers", "2")
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    victim = process.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    process.wait_count(r"died \(exit code -9\); replacing it", 1, timeout=30)
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 3)
    pids = {int(get(sender, "/").content) for _ in range(30)}
    assert victim not in pids
    assert len(process.worker_pids()) == 3
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0, process.describe()


def test_preload_forks_workers_from_a_process_holding_the_app_and_still_reloads(serve: Serve, sender: Sender) -> None:
    process = serve("serve_app", "--preload", "--workers", "2")
    process.online()
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    pids = {int(get(sender, "/").content) for _ in range(20)}
    assert pids <= set(process.worker_pids())
    parents = {int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]) for pid in process.worker_pids()}
    assert parents != {process.process.pid}  # forked by the forkserver, not by the arbiter
    process.signal(signal.SIGHUP)
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 4)
    process.wait_count(r"exited \(0\)", 2)
    assert get(sender, "/").status_code == 200
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0, process.describe()


def test_sigttin_and_sigttou_add_and_remove_a_worker(serve: Serve) -> None:
    process = serve("serve_app", "--workers", "1")
    process.online()
    process.signal(signal.SIGTTIN)
    process.wait_count(r"SIGTTIN: now 2 workers", 1)
    process.wait_count(r"worker \d+ \(pid \d+\) is online", 2)
    process.signal(signal.SIGTTOU)
    process.wait_count(r"retiring worker 2 .*fewer workers wanted", 1)
    process.wait_count(r"exited \(0\)", 1)
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0, process.describe()
