"""Peak resident memory while a block runs: for "a 1 GB body passes in bounded memory" tests.

A sampling thread reads VmRSS every few milliseconds (a transient peak between samples is
possible but a held body is not: it stays resident for many samples).
"""

from __future__ import annotations

import gc
import threading
from typing import Any, Optional

from tests.support.measure import rss_bytes

__all__ = ["PeakRss", "MB"]

MB = 1024 * 1024


class PeakRss:
    """``with PeakRss() as peak: ...`` then ``peak.growth`` (bytes over the RSS at entry)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "PeakRss":
        gc.collect()
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="test-peak-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __repr__(self) -> str:
        return f"<PeakRss start={self.start / MB:.1f} MB peak={self.peak / MB:.1f} MB growth={self.growth / MB:.1f} MB>"
