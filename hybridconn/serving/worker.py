"""One worker process: a listener serving the WSGI application, reporting to the arbiter.

The arbiter starts :func:`run_worker` in a process of its own (``spawn``, or
``forkserver`` with ``--preload``). The worker imports the application, opens
its listener (``--threads`` handler threads) and tells the arbiter over its
status pipe when it is online, offline, draining or done, with a heartbeat
every second carrying its counts for ``--metrics``. Signals, gunicorn's way:

- SIGTERM or SIGINT: drain (leave the relay, let requests in flight finish
  within ``--graceful-timeout``, answer the rest 503), then exit 0;
- a second SIGINT, or SIGQUIT: exit at once;
- SIGHUP, SIGTTIN, SIGTTOU: ignored (they are the arbiter's).

A worker whose arbiter is gone (the pipe breaks) drains and exits too. Exit
code :data:`BOOT_FAILED` means it never came online (a bad application or
relay settings): the arbiter stops instead of restarting it in a loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

from ..exceptions import HybridConnectionError
from ..listener import HybridConnectionListener
from ..relayed import ResponseRecord
from ..wsgi import serve_wsgi
from .accesslog import AccessLog
from .app import load_app
from .logs import configure_error_log
from .metrics import Tally
from .settings import ServeConfig

__all__ = ["run_worker", "BOOT_FAILED", "RELAY_GONE", "HEARTBEAT_INTERVAL"]

log: logging.Logger = logging.getLogger(__name__)

#: Exit code of a worker that could not start serving (the arbiter gives up rather than retry).
BOOT_FAILED = 3
#: Exit code of a worker whose listener stopped for good (the hybrid connection is gone: 404).
RELAY_GONE = 4
#: Seconds between heartbeats (each carries the worker's counts).
HEARTBEAT_INTERVAL = 1.0


class ArbiterLink:
    """The status pipe to the arbiter, shared by the worker's threads."""

    def __init__(self, conn: Any, worker_id: int) -> None:
        self._conn = conn
        self.worker_id = worker_id
        self._lock = threading.Lock()
        self.gone: threading.Event = threading.Event()

    def send(self, kind: str, **fields: Any) -> None:
        with self._lock:
            if self.gone.is_set():
                return
            try:
                self._conn.send(dict(fields, kind=kind, worker=self.worker_id, pid=os.getpid()))
            except (OSError, EOFError, ValueError):
                self.gone.set()  # the arbiter died: time to go


class Stop:
    """What the signals asked for: ``graceful`` (drain) or ``now``."""

    def __init__(self) -> None:
        self.graceful: threading.Event = threading.Event()
        self.now: threading.Event = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_int)
        for name in ("SIGQUIT",):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), lambda *_: self.now.set())
        for name in ("SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)

    def _on_term(self, signum: int, frame: Optional[FrameType]) -> None:
        self.graceful.set()

    def _on_int(self, signum: int, frame: Optional[FrameType]) -> None:
        (self.now if self.graceful.is_set() else self.graceful).set()


def relay_options(config: ServeConfig) -> Dict[str, Any]:
    """``credential=`` for --auth and ``verify=`` for --ca-cert/--insecure, as the other commands build them."""
    from ..commands._common import credential_options, tls_options

    settings = argparse.Namespace(auth=config.auth, ca_cert=config.ca_cert, insecure=config.insecure)
    return {**credential_options(settings), **tls_options(settings)}


def _build(config: ServeConfig, worker_id: int) -> HybridConnectionListener:
    assert config.app is not None and config.connection_string is not None
    app = load_app(config.app)
    listener = HybridConnectionListener.from_connection_string(
        config.connection_string, path=config.path, max_workers=config.threads, name=f"{config.path}.w{worker_id}",
        **relay_options(config))
    serve_wsgi(app, listener)
    return listener


def _watch_responses(listener: HybridConnectionListener, config: ServeConfig, tally: Tally) -> Optional[AccessLog]:
    access = None
    if config.access_logfile:
        fmt = None if config.log_format == "json" else config.access_logformat
        access = AccessLog(config.access_logfile, fmt, listener.path)

    def on_response(record: ResponseRecord) -> None:
        tally(record)
        if access is not None:
            access(record)

    listener.on_response = on_response
    return access


def _heartbeats(listener: HybridConnectionListener, link: ArbiterLink, tally: Tally, stop: Stop,
                config: ServeConfig, done: threading.Event) -> None:
    limit = config.max_requests + random.randint(0, config.max_requests_jitter) if config.max_requests else 0
    asked = False
    while not done.wait(HEARTBEAT_INTERVAL):
        link.send("heartbeat", snapshot=tally.snapshot(listener.stats, listener.is_online), state=listener.state)
        if link.gone.is_set():
            log.warning("worker %d: the arbiter is gone; stopping", link.worker_id)
            stop.graceful.set()
            return
        if limit and not asked and tally.count >= limit:
            asked = True
            log.info("worker %d served %d requests (--max-requests); asking to be replaced", link.worker_id,
                     tally.count)
            link.send("retire", why="max-requests")


def run_worker(settings: Dict[str, Any], worker_id: int, status: Any) -> None:
    """A worker process's whole life (the multiprocessing target); ends the process itself."""
    config = ServeConfig(**settings)
    configure_error_log(config.error_logfile, config.log_level, config.log_format)
    link, stop = ArbiterLink(status, worker_id), Stop()
    stop.install()
    code = 0
    try:
        code = _serve(config, worker_id, link, stop)
    except BaseException:  # noqa: BLE001 - whatever happened, report and end this process
        log.exception("worker %d failed", worker_id)
        code = 1
    finally:
        logging.shutdown()
        # Not sys.exit: a handler thread that never returns must not hold the process past its bound.
        os._exit(code)


def _serve(config: ServeConfig, worker_id: int, link: ArbiterLink, stop: Stop) -> int:
    try:
        listener = _build(config, worker_id)
    except Exception as exc:  # noqa: BLE001 - the application's import may fail in any way
        link.send("boot_failed", error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, HybridConnectionError)
                  else str(exc))
        return BOOT_FAILED
    tally = Tally()
    access = _watch_responses(listener, config, tally)
    listener.on_online = lambda: link.send("online")
    listener.on_offline = lambda error: link.send("offline", error=str(error) if error else None)
    try:
        listener.open(timeout=config.open_timeout)
    except HybridConnectionError as exc:
        link.send("boot_failed", error=str(exc))
        return BOOT_FAILED
    log.info("worker %d (pid %d) serving %s on %s with %d threads", worker_id, os.getpid(), config.app,
             listener.path, config.threads)
    done = threading.Event()
    beats = threading.Thread(target=_heartbeats, args=(listener, link, tally, stop, config, done),
                             name=f"hybridconn-heartbeat-{worker_id}", daemon=True)
    beats.start()
    code = _wait_and_stop(listener, link, stop, config)
    done.set()
    beats.join(2.0)
    link.send("stopped", snapshot=tally.snapshot(listener.stats, False))
    if access is not None:
        access.close()
    return code


def _wait_and_stop(listener: HybridConnectionListener, link: ArbiterLink, stop: Stop, config: ServeConfig) -> int:
    while not stop.graceful.wait(0.5) and not stop.now.is_set():
        if listener.state == "closed":  # the hybrid connection is gone (404): nothing to serve
            log.error("worker %d: the listener stopped: %s", link.worker_id, listener.last_error)
            link.send("failed", error=str(listener.last_error))
            return RELAY_GONE
    if stop.now.is_set():
        listener.close(timeout=1.0)
        return 1
    link.send("draining")
    log.info("worker %d draining (up to %g s)", link.worker_id, config.graceful_timeout)
    drained = threading.Thread(target=listener.drain, args=(config.graceful_timeout,), name="hybridconn-drain",
                               daemon=True)
    drained.start()
    while drained.is_alive():
        if stop.now.wait(0.2):
            log.warning("worker %d: stopping at once", link.worker_id)
            return 1
        drained.join(0.0)
    return 0
