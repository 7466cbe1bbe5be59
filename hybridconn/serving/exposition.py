"""``--metrics HOST:PORT``: the arbiter's totals in Prometheus's text format, and a health check.

``GET /metrics`` answers the exposition format through ``prometheus_client``
(the ``hybridconn[metrics]`` extra; OpenMetrics when the scraper asks for it);
``GET /health`` answers 200 while at least one listener is online, else 503,
for load balancers and container probes that speak HTTP. The server runs in
one thread of the arbiter (``hybridconn-metrics``) and stops on :meth:`close`.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from ..exceptions import ConfigurationError
from .metrics import BUCKETS, COUNTERS, GAUGES

__all__ = ["MetricsServer", "require_prometheus_client", "collect"]

log: logging.Logger = logging.getLogger(__name__)

View = Callable[[], Dict[str, Any]]


def require_prometheus_client() -> None:
    """Fail clearly, before any worker starts, when the extra is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError("--metrics needs prometheus_client: pip install 'hybridconn[metrics]'") from exc


def collect(view: Dict[str, Any]) -> Iterator[Any]:
    """The metric families for one view of the totals."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    requests = CounterMetricFamily("hybridconn_requests", "HTTP responses sent, by status code.", labels=["status"])
    for status, count in sorted(view["statuses"].items()):
        requests.add_metric([status], count)
    yield requests
    cumulative, buckets = 0, []
    for bound, count in zip(BUCKETS, view["buckets"]):
        cumulative += count
        buckets.append((repr(bound), cumulative))
    buckets.append(("+Inf", view["count"]))
    yield HistogramMetricFamily("hybridconn_request_duration_seconds", "Seconds from reading a request to its "
                                "response's last byte.", buckets=buckets, sum_value=view["sum"])
    for key, (name, text) in COUNTERS.items():
        yield CounterMetricFamily(name[: -len("_total")], text, value=view["stats"].get(key, 0))
    for key, (name, text) in GAUGES.items():
        yield GaugeMetricFamily(name, text, value=view["gauges"].get(key, 0))
    yield GaugeMetricFamily("hybridconn_listeners_online", "Workers whose listener is online.", value=view["online"])
    yield GaugeMetricFamily("hybridconn_workers", "Worker processes running.", value=view["workers"])
    yield CounterMetricFamily("hybridconn_worker_restarts", "Workers replaced after they died or stopped answering.",
                              value=view["restarts"])


class _Collector:
    def __init__(self, view: View) -> None:
        self._view = view

    def collect(self) -> Iterator[Any]:
        return collect(self._view())


def _handler(registry: Any, online: Callable[[], int]) -> type:
    from prometheus_client.exposition import choose_encoder

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._answer(200, content_type, encoder(registry))
            elif path == "/health":
                count = online()
                self._answer(200 if count else 503, "text/plain; charset=utf-8",
                             (f"online ({count} listeners)\n" if count else "offline\n").encode())
            else:
                self._answer(404, "text/plain; charset=utf-8", b"not found: try /metrics or /health\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            log.debug("metrics: " + format, *args)  # noqa: G003 - http.server's own format

    return Handler


class MetricsServer:
    """The metrics and health endpoint of one arbiter."""

    def __init__(self, address: str, view: View, online: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry

        host, _, port = address.rpartition(":")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(view))
        try:
            self._server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), _handler(registry, online))
        except OSError as exc:
            raise ConfigurationError(f"--metrics {address}: cannot listen there: {exc.strerror or exc}") from exc
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="hybridconn-metrics", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
