"""``--health-file PATH``: a file touched while a listener is online, for container probes.

The arbiter touches it every :data:`TOUCH_INTERVAL` seconds while at least one
worker's listener is online, and removes it when none is or when serving ends.
A probe checks that the file is fresh; ``python -m hybridconn.serving.health
PATH`` does (exit 0 when it was touched within ``--max-age`` seconds, else 1)::

    HEALTHCHECK CMD python -m hybridconn.serving.health /tmp/hybridconn.health
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

__all__ = ["HealthFile", "is_fresh", "main", "TOUCH_INTERVAL", "DEFAULT_MAX_AGE"]

#: Seconds between touches while online.
TOUCH_INTERVAL = 5.0
#: A probe's default: older than this, the server counts as down.
DEFAULT_MAX_AGE = 30.0


class HealthFile:
    """Touches ``path`` while told the service is online; removes it otherwise."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._touched = 0.0

    def update(self, online: bool) -> None:
        """Call often; touches at most every :data:`TOUCH_INTERVAL` seconds."""
        if not online:
            self.remove()
            return
        now = time.monotonic()
        if self._touched and now - self._touched < TOUCH_INTERVAL:
            return
        with open(self.path, "a", encoding="utf-8"):
            pass
        os.utime(self.path, None)
        self._touched = now

    def remove(self) -> None:
        self._touched = 0.0
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def is_fresh(path: str, max_age: float = DEFAULT_MAX_AGE) -> bool:
    """True when ``path`` exists and was touched within ``max_age`` seconds."""
    try:
        return time.time() - os.stat(path).st_mtime <= max_age
    except OSError:
        return False


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridconn.serving.health",
                                     description="exit 0 when hybridconn serve's health file is fresh, else 1")
    parser.add_argument("path")
    parser.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE, help="seconds (default: 30)")
    args = parser.parse_args(argv)
    return 0 if is_fresh(args.path, args.max_age) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
