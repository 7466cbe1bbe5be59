"""One timeout spread over several steps.

``close(timeout)`` does many things in turn (refuse queued work, close the
control channel, close sockets, join threads); each step gets what is left of
one :class:`Deadline` instead of a fixed wait of its own, so the whole stays
within the caller's timeout however many steps there are.
"""

from __future__ import annotations

import threading
import time
from typing import Optional, Union

__all__ = ["Deadline"]


class Deadline:
    """A point in time (``time.monotonic()``), or None for no limit.

    :param timeout: seconds from now; None never expires.
    """

    __slots__ = ("_at",)

    def __init__(self, timeout: Optional[float]) -> None:
        self._at = None if timeout is None else time.monotonic() + max(0.0, float(timeout))

    @classmethod
    def at(cls, when: Optional[float]) -> "Deadline":
        """A deadline at the monotonic time ``when``."""
        deadline = cls(None)
        deadline._at = when
        return deadline

    @classmethod
    def coerce(cls, value: "Union[Deadline, float, None]") -> "Deadline":
        """A Deadline as is; a number as a monotonic time (the older float-deadline convention)."""
        return value if isinstance(value, Deadline) else cls.at(value)

    @property
    def when(self) -> Optional[float]:
        """The monotonic time it expires at (None: never)."""
        return self._at

    def remaining(self, cap: Optional[float] = None, floor: float = 0.0) -> Optional[float]:
        """Seconds left (at least ``floor``, at most ``cap``); None when there is no limit and no cap."""
        if self._at is None:
            return cap
        left = max(floor, self._at - time.monotonic())
        return left if cap is None else min(left, cap)

    def left(self, cap: Optional[float] = None, floor: float = 0.0) -> float:
        """Like :meth:`remaining` but always a number (an unlimited deadline gives ``cap``, or a day)."""
        value = self.remaining(cap, floor)
        return 86400.0 if value is None else value

    @property
    def expired(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at

    def fraction(self, part: float) -> "Deadline":
        """A deadline ``part`` (0..1) of the way from now to this one (itself when unlimited)."""
        if self._at is None:
            return self
        now = time.monotonic()
        return Deadline.at(now + max(0.0, self._at - now) * part)

    def sooner(self, seconds: float) -> "Deadline":
        """This deadline or ``seconds`` from now, whichever comes first."""
        other = time.monotonic() + max(0.0, seconds)
        return Deadline.at(other if self._at is None else min(self._at, other))

    def extended(self, seconds: float) -> "Deadline":
        """This deadline moved ``seconds`` later (itself when unlimited)."""
        return self if self._at is None else Deadline.at(self._at + seconds)

    def join(self, thread: threading.Thread) -> bool:
        """Join ``thread`` until the deadline; True when it has ended (the current thread counts as ended)."""
        if thread is threading.current_thread() or thread.ident is None:
            return True
        thread.join(self.remaining())
        return not thread.is_alive()

    def wait(self, event: threading.Event) -> bool:
        """Wait for ``event`` until the deadline."""
        return event.wait(self.remaining())

    def __repr__(self) -> str:
        left = self.remaining()
        return "Deadline(never)" if left is None else f"Deadline({left:.3f} s left)"
