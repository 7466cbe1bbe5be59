"""The reconnect policy: how long to wait before each attempt, and why a channel ended.

Delays follow a schedule (Microsoft's clients use 0, 1, 2, 5, 10, 30 s, the
last repeating), each spread by +- ``jitter`` so a fleet of listeners cut off
together does not come back in lockstep. A channel that stayed up
:data:`STABLE_AFTER` seconds resets the schedule to its first step, and so
does a channel the service closed to restart it (1011 ``NameRenewalFailed``,
about daily, or 1001/1012) after it had been up :data:`RESTART_MIN_UP`
seconds: the first retry after a service restart goes out at once.
"""

from __future__ import annotations

import random
import time
from typing import Sequence

from ..connection import HybridConnection
from ..exceptions import AuthenticationError, ConfigurationError, ConnectionClosed, HybridConnectionError

__all__ = ["Backoff", "backoff_delay", "loss_error", "is_service_restart", "STABLE_AFTER", "RESTART_MIN_UP"]

#: A channel that stayed up this long resets the backoff to its first step.
STABLE_AFTER = 5.0
#: A service restart resets the backoff after a channel was up this long (a channel closed at
#: once every time still backs off, so a broken service is not hammered).
RESTART_MIN_UP = 1.0
#: Close codes with which the service restarts a channel (the listener should come back at once).
_RESTART_CODES = frozenset({1001, 1011, 1012})


def backoff_delay(schedule: Sequence[float], attempt: int, jitter: float) -> float:
    """Seconds before reconnect ``attempt`` (0-based): the schedule's step (the last repeats) +- jitter."""
    if not schedule:
        return 0.0
    base = float(schedule[min(attempt, len(schedule) - 1)])
    return max(0.0, base * random.uniform(1 - jitter, 1 + jitter))


class Backoff:
    """Where a listener is in its reconnect schedule."""

    def __init__(self, schedule: Sequence[float], jitter: float) -> None:
        self.schedule = tuple(float(step) for step in schedule)
        if any(step < 0 for step in self.schedule):
            raise ConfigurationError("backoff delays must not be negative")
        if not 0 <= jitter < 1:
            raise ConfigurationError("jitter must be a fraction from 0 up to (not including) 1")
        self.jitter = jitter
        self.attempt = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (not yet counted)."""
        return backoff_delay(self.schedule, self.attempt, self.jitter)

    def attempted(self) -> None:
        self.attempt += 1

    def channel_ended(self, opened_at: float, service_restart: bool = False) -> None:
        """A channel opened at ``opened_at`` (monotonic) ended: start over if it had been stable,
        or if the service closed it to restart it."""
        up = time.monotonic() - opened_at
        if up >= STABLE_AFTER or (service_restart and up >= RESTART_MIN_UP):
            self.attempt = 0


def is_service_restart(conn: HybridConnection) -> bool:
    """True when the relay ended ``conn`` with a close frame that asks for a reconnect (1011 etc.)."""
    return conn.close_code in _RESTART_CODES


def loss_error(conn: HybridConnection) -> HybridConnectionError:
    """Why a control channel ended: 1008 (token expired or invalid) is an authentication error."""
    if conn.close_code == 1008:
        return AuthenticationError(None, f"the relay closed the control channel (1008 {conn.close_reason})".strip())
    return ConnectionClosed(conn.close_code, conn.close_reason or "control channel lost")
