"""Shared fixtures. Every test is checked for leaked hybridconn threads and open sockets."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Iterator, Set

import pytest
from hypothesis import settings

# CI runs each property test on a fixed sequence of examples, so a red CI is reproducible;
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

LEAK_GRACE = 5.0  # seconds a thread or socket may take to wind down after a test


def _hybridconn_threads() -> Set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("hybridconn-") and t.is_alive()}


def _open_sockets() -> Set[str]:
    found = set()
    fd_dir = "/proc/self/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:  # not Linux: thread check only
        return found
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a ``hybridconn-*`` thread alive or a socket open."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    threads_before = _hybridconn_threads()
    sockets_before = _open_sockets()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    while True:
        gc.collect()
        threads = _hybridconn_threads() - threads_before
        sockets = _open_sockets() - sockets_before
        if not threads and not sockets:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = []
    if threads:
        problems.append("threads still alive: " + ", ".join(sorted(t.name for t in threads)))
    if sockets:
        problems.append(f"{len(sockets)} socket(s) left open")
    pytest.fail("leak after test: " + "; ".join(problems), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_leaks: skip the leak check (for tests of the checker itself)")
