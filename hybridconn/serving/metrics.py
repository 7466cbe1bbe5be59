"""Metrics: counted in each worker, added up in the arbiter, served in Prometheus's text format.

A worker's :class:`Tally` counts its responses by status and their durations
(fed by the listener's ``on_response`` hook) and sends a :func:`snapshot` with
each heartbeat. The arbiter's :class:`Totals` keeps the latest snapshot of
each live worker and what retired workers had counted, so counters never go
backwards when a worker is replaced. :mod:`.exposition` serves them.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Tuple

from ..relayed import ResponseRecord

__all__ = ["Tally", "Totals", "BUCKETS", "COUNTERS", "GAUGES"]

#: Upper bounds (seconds) of the request-duration histogram.
BUCKETS: Tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: Listener counters (``listener.stats`` keys) -> (metric name, help). Summed over workers, old ones included.
COUNTERS: Dict[str, Tuple[str, str]] = {
    "busy": (
        "hybridconn_busy_responses_total",
        "Requests and connections refused 503 because the listener was busy or closing.",
    ),
    "accepted": ("hybridconn_connections_accepted_total", "WebSocket connections accepted."),
    "rejected": ("hybridconn_connections_rejected_total", "WebSocket connections rejected."),
    "rendezvous_opened": ("hybridconn_rendezvous_opened_total", "Rendezvous sockets opened."),
    "reconnects": ("hybridconn_reconnects_total", "Control channel reconnects (connects after the first)."),
    "renewals": ("hybridconn_token_renewals_total", "Listener token renewals sent."),
}
#: Listener gauges -> (metric name, help). Summed over live workers.
GAUGES: Dict[str, Tuple[str, str]] = {
    "in_flight": ("hybridconn_requests_in_flight", "Requests and connections being handled or queued."),
    "queued": ("hybridconn_request_queue_depth", "Work waiting for a handler thread."),
    "sockets": ("hybridconn_rendezvous_sockets", "Open rendezvous and accepted sockets."),
}


class Tally:
    """One worker's responses by status and their durations (thread-safe: handler threads feed it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: Dict[str, int] = {}
        self.buckets: List[int] = [0] * len(BUCKETS)
        self.duration_sum: float = 0.0
        self.count: int = 0

    def __call__(self, record: ResponseRecord) -> None:
        with self._lock:
            key = str(record.status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            self.count += 1
            self.duration_sum += record.duration
            for index, bound in enumerate(BUCKETS):
                if record.duration <= bound:
                    self.buckets[index] += 1
                    break

    def snapshot(self, stats: Dict[str, int], online: bool) -> Dict[str, Any]:
        """What a heartbeat carries: the tally and the listener's ``stats``."""
        with self._lock:
            return {"statuses": dict(self.statuses), "buckets": list(self.buckets), "sum": self.duration_sum,
                    "count": self.count, "stats": dict(stats, reconnects=max(0, stats.get("connects", 0) - 1)),
                    "online": online}


def _add(total: Dict[str, Any], snapshot: Dict[str, Any]) -> None:
    for status, count in snapshot.get("statuses", {}).items():
        total["statuses"][status] = total["statuses"].get(status, 0) + count
    total["buckets"] = [a + b for a, b in zip(total["buckets"], snapshot.get("buckets", [0] * len(BUCKETS)))]
    total["sum"] += snapshot.get("sum", 0.0)
    total["count"] += snapshot.get("count", 0)
    for key in COUNTERS:
        total["stats"][key] = total["stats"].get(key, 0) + snapshot.get("stats", {}).get(key, 0)


def _empty() -> Dict[str, Any]:
    return {"statuses": {}, "buckets": [0] * len(BUCKETS), "sum": 0.0, "count": 0, "stats": {}}


class Totals:
    """The arbiter's view: live workers' latest snapshots plus what retired workers counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: Dict[int, Dict[str, Any]] = {}
        self._retired = _empty()
        self.restarts = 0

    def update(self, worker: int, snapshot: Dict[str, Any]) -> None:
        with self._lock:
            self._live[worker] = snapshot

    def retire(self, worker: int) -> None:
        """A worker ended: its last counts join the retired totals."""
        with self._lock:
            snapshot = self._live.pop(worker, None)
            if snapshot is not None:
                _add(self._retired, snapshot)

    def view(self, workers: int) -> Dict[str, Any]:
        """Counters summed over every worker ever, gauges over live ones, and the counts of workers."""
        with self._lock:
            total = _empty()
            _add(total, self._retired)
            gauges: Dict[str, int] = dict.fromkeys(GAUGES, 0)
            online = 0
            for snapshot in self._live.values():
                _add(total, snapshot)
                for key in GAUGES:
                    gauges[key] += snapshot.get("stats", {}).get(key, 0)
                online += 1 if snapshot.get("online") else 0
            total.update(gauges=gauges, online=online, workers=workers, restarts=self.restarts)
            return total
