"""What this test process holds: hybridconn threads, open sockets, memory; the fd limit; polling.

The autouse ``no_leaks`` fixture (tests/conftest.py) compares :func:`live_hybridconn_threads`
and :func:`open_sockets` before and after every test; the reliability tests count and report
them. Sockets are read from /proc/self/fd (Linux); elsewhere only threads are checked.
"""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from typing import Callable, List, Set

_FD_DIR = "/proc/self/fd"


def live_hybridconn_threads() -> Set[threading.Thread]:
    """The library's threads (named ``hybridconn-...``) that are alive now."""
    return {t for t in threading.enumerate() if t.name.startswith("hybridconn-") and t.is_alive()}


def hybridconn_threads() -> List[str]:
    """The names of :func:`live_hybridconn_threads`, sorted."""
    return sorted(t.name for t in live_hybridconn_threads())


def open_sockets() -> Set[str]:
    """This process's open sockets as ``socket:[inode]`` (empty where /proc is missing)."""
    found: Set[str] = set()
    try:
        names = os.listdir(_FD_DIR)
    except OSError:  # not Linux: thread check only
        return found
    for name in names:
        try:
            target = os.readlink(os.path.join(_FD_DIR, name))
        except OSError:  # closed since listdir
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def open_socket_count() -> int:
    """Open sockets of this process, after a garbage collection: a failed request's socket can be
    kept by its exception's traceback cycle (urllib3's response holds ``sock.shutdown``) until then."""
    gc.collect()
    return len(open_sockets())


def describe_sockets() -> List[str]:
    """This process's TCP sockets as ``local->remote state`` (for failure messages)."""
    inodes = {target[len("socket:["):-1] for target in open_sockets()}
    states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "0A": "LISTEN",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0B": "CLOSING"}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    cols = row.split()
                    if cols[9] in inodes:
                        local, remote = (int(c.split(":")[1], 16) for c in (cols[1], cols[2]))
                        found.append(f"{local}->{remote} {states.get(cols[3], cols[3])}")
        except OSError:
            continue
    return sorted(found)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def ensure_fd_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (up to the hard limit); returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` (for conditions with no event to wait on, such as a thread count)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
