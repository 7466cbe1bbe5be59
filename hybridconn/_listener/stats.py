"""The listener's counters, bumped from the reader, the timer and every pool thread."""

from __future__ import annotations

import threading
from typing import Dict

__all__ = ["Counters"]


class Counters:
    """Named integer counters behind one lock."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, int] = dict.fromkeys(names, 0)

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + by

    def get(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)
