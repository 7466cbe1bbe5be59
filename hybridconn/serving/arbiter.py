"""The arbiter: keeps ``--workers`` worker processes serving, and handles the signals.

The relay is the load balancer (it spreads a hybrid connection's requests over
its online listeners), so the arbiter only keeps well-behaved listener
processes alive: it starts them, replaces one that dies (backing off when
they keep dying), kills one that stops sending heartbeats (``--timeout``),
and replaces one that asks to retire (``--max-requests``) once its successor
is online. Each loop it reconciles what runs with what should:

- enough workers of the current generation (``--workers``), never more than
  the relay's 25 listeners at once;
- a worker of an older generation, or one that asked to retire, is told to
  drain (SIGTERM) only when enough current ones are online to take its place.

Signals, gunicorn's conventions: SIGTERM or SIGINT drains every worker and
exits once they have (bounded: ``--graceful-timeout`` plus a few seconds,
then they are killed); a second SIGINT or SIGQUIT ends at once; SIGHUP
reloads (re-reads the config file, starts a new generation, retires the old
one as the new comes online: no request fails); SIGTTIN and SIGTTOU add and
remove a worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from typing import Any, Callable, Dict, List, Optional

from ..exceptions import ConfigurationError, HybridConnectionError
from ..protocol import MAX_LISTENERS
from .health import HealthFile
from .metrics import Totals
from .notify import Notifier
from .settings import ServeConfig
from .worker import RELAY_GONE
from .workers import Spawner, Worker

__all__ = ["Arbiter", "RESTART_DELAYS", "KILL_MARGIN"]

log: logging.Logger = logging.getLogger(__name__)

#: Seconds before restarting a worker after consecutive failures (the last repeats).
RESTART_DELAYS = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
#: Seconds past --graceful-timeout a draining worker gets before it is killed.
KILL_MARGIN = 5.0
_LOOP = 0.5  # the main loop wakes at least this often


class Arbiter:
    """Runs the workers of one ``hybridconn serve`` until a signal ends it.

    :param config: the resolved settings (the connection string already known).
    :param reload_config: returns the settings again (for SIGHUP); None keeps ``config``.
    :param on_ready: called once, when the first listener is online.
    """

    def __init__(self, config: ServeConfig, reload_config: Optional[Callable[[], ServeConfig]] = None,
                 on_ready: Optional[Callable[[], None]] = None) -> None:
        self.config: ServeConfig = config
        self._reload_config = reload_config
        self._on_ready = on_ready
        self.target: int = config.workers
        self.generation: int = 1
        self.workers: Dict[int, Worker] = {}
        self.totals: Totals = Totals()
        self._spawner = Spawner(config)
        self._next_id = 1
        self._failures = 0
        self._not_before = 0.0
        self._ever_online = False
        self._stopping: Optional[float] = None  # when the graceful stop began
        self._boot_error: Optional[str] = None
        self._health = HealthFile(config.health_file) if config.health_file else None
        self._notify = Notifier()
        self._reloading = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._signals: List[int] = []

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Serve until stopped; the exit code (raises when the workers could not start at all)."""
        previous = self._install_signals()
        try:
            self._write_pidfile()
            log.info("arbiter %d starting %d workers of %s", os.getpid(), self.target, self.config.app)
            while True:
                self._handle_signals()
                self._reap()
                self._reconcile()
                if self._stopping is not None and not self._alive():
                    # A worker may have ended since _reap above: account for it (its last counters,
                    # its exit line) before leaving.
                    self._reap()
                    break
                self._wait(_LOOP)
                self._check_timeouts()
                if self._health is not None:
                    self._health.update(self.online_count() > 0 and self._stopping is None)
        finally:
            self._shut_down(previous)
        if self._boot_error is not None:
            raise HybridConnectionError(f"the workers could not serve: {self._boot_error}")
        return 0

    def online_count(self) -> int:
        return sum(1 for w in self.workers.values() if w.state == "online")

    def _alive(self) -> List[Worker]:
        return [w for w in self.workers.values() if w.alive]

    # ------------------------------------------------------------------ signals

    def _install_signals(self) -> Dict[int, Any]:
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous: Dict[int, Any] = {}
        for name in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGTTIN", "SIGTTOU"):
            number = getattr(signal, name, None)
            if number is not None:
                # The handler only records; the loop acts, outside signal context.
                previous[number] = signal.signal(number, lambda signum, frame: self._signals.append(signum))
        return previous

    def _handle_signals(self) -> None:
        while self._signals:
            number = self._signals.pop(0)
            name = signal.Signals(number).name
            if number in (signal.SIGTERM, signal.SIGINT):
                if self._stopping is None:
                    log.info("%s: draining the workers (up to %g s)", name, self.config.graceful_timeout)
                    self.stop()
                elif number == signal.SIGINT:
                    log.warning("second SIGINT: stopping at once")
                    self.stop_now()
            elif name == "SIGQUIT":
                log.warning("SIGQUIT: stopping at once")
                self.stop_now()
            elif name == "SIGHUP" and self._stopping is None:
                self.reload()
            elif name in ("SIGTTIN", "SIGTTOU") and self._stopping is None:
                self.target = max(1, min(MAX_LISTENERS, self.target + (1 if name == "SIGTTIN" else -1)))
                log.info("%s: now %d workers", name, self.target)

    def _reap(self) -> None:
        """Take note of every worker that has exited (whether or not its sentinel was seen)."""
        for worker in list(self.workers.values()):
            if not worker.alive:
                self._on_worker_event(worker)

    def _wait(self, timeout: float) -> None:
        waitables: List[Any] = [self._wake_r]
        for worker in self.workers.values():
            waitables.extend(worker.waitables())
        for ready in multiprocessing.connection.wait(waitables, timeout):
            if ready is self._wake_r:
                try:
                    self._wake_r.recv(512)  # signal numbers; the handlers queued them already
                except OSError:
                    pass
                continue
            for worker in list(self.workers.values()):
                if ready in worker.waitables():
                    self._on_worker_event(worker)

    # ------------------------------------------------------------------ commands

    def stop(self) -> None:
        """Drain every worker, then end."""
        self._notify.stopping()
        self._stopping = time.monotonic()
        for worker in self._alive():
            worker.retire()

    def stop_now(self) -> None:
        self._stopping = self._stopping or time.monotonic()
        for worker in self._alive():
            worker.quit()
        deadline = time.monotonic() + 2.0
        for worker in self._alive():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.alive:
                worker.kill()

    def reload(self) -> None:
        """A new generation of workers; the old one retires as the new one comes online."""
        if self._reload_config is not None:
            try:
                fresh = self._reload_config()
            except ConfigurationError as exc:
                log.error("SIGHUP: the configuration is invalid (%s); keeping the running workers", exc)
                return
            self.config = self._worker_settings(fresh)
            self._spawner.config = self.config
            self.target = self.config.workers
        self.generation += 1
        self._notify.reloading()
        self._reloading = True
        log.info("SIGHUP: reloading (generation %d, %d workers)", self.generation, self.target)

    def _worker_settings(self, fresh: ServeConfig) -> ServeConfig:
        """What a reload may change: the workers' settings; the arbiter's own (where to listen) stay."""
        keep = ("connection_string", "path", "metrics", "pidfile", "health_file", "preload")
        values = fresh.as_dict()
        values.update({name: getattr(self.config, name) for name in keep})
        return ServeConfig(**values, sources=fresh.sources)

    # ------------------------------------------------------------------ the reconciling step

    def _reconcile(self) -> None:
        if self._stopping is not None:
            return
        current = [w for w in self._alive() if w.generation == self.generation and not w.retiring
                   and not w.retire_requested]
        stale = [w for w in self._alive() if not w.retiring and w not in current]
        missing = self.target - len(current)
        if missing > 0 and time.monotonic() >= self._not_before:
            room = MAX_LISTENERS - len([w for w in self._alive() if not w.retiring])
            if room <= 0 and stale and all(w.state == "online" for w in current):
                # At the limit: one listener fewer for a moment, never two.
                self._retire(stale.pop(0), "to make room under the relay's listener limit")
                room = 1
            for _ in range(min(missing, max(0, room))):
                self._spawn()
        online = [w for w in current if w.state == "online"]
        # Keep at least --workers listeners online: a stale worker goes once a current one can take its place.
        extra = len(online) + len(stale) - self.target
        for worker in stale[: max(0, extra)]:
            self._retire(worker, "replaced")
        surplus = len(current) - self.target
        for worker in sorted(current, key=lambda w: w.id, reverse=True)[: max(0, surplus)]:
            self._retire(worker, "fewer workers wanted")

    def _spawn(self) -> None:
        worker = self._spawner.start(self._next_id, self.generation)
        self._next_id += 1
        self.workers[worker.id] = worker
        log.info("booting worker %d (pid %s, generation %d)", worker.id, worker.pid, worker.generation)

    def _retire(self, worker: Worker, why: str) -> None:
        log.info("retiring worker %d (pid %s): %s", worker.id, worker.pid, why)
        worker.retire()

    # ------------------------------------------------------------------ what workers say and do

    def _on_worker_event(self, worker: Worker) -> None:
        for message in worker.receive():
            kind = message.get("kind")
            if kind == "heartbeat":
                self.totals.update(worker.id, message.get("snapshot", {}))
            elif kind == "stopped":
                self.totals.update(worker.id, message.get("snapshot", {}))
            elif kind == "online":
                self._on_online(worker)
            elif kind == "boot_failed":
                worker.boot_error = str(message.get("error"))
                log.error("worker %d could not start: %s", worker.id, worker.boot_error)
            elif kind == "failed":
                worker.boot_error = str(message.get("error"))
            elif kind == "retire":
                worker.retire_requested = True
        if not worker.alive:
            self._on_exit(worker)

    def _on_online(self, worker: Worker) -> None:
        log.info("worker %d (pid %s) is online", worker.id, worker.pid)
        self._failures = 0
        status = f"{self.online_count()} of {self.target} workers online"
        if not self._ever_online or self._reloading:
            self._notify.ready(status)  # READY=1 again ends a reload for systemd
            self._reloading = False
        else:
            self._notify.status(status)
        if not self._ever_online:
            self._ever_online = True
            if self._on_ready is not None:
                self._on_ready()

    def _on_exit(self, worker: Worker) -> None:
        self.workers.pop(worker.id, None)
        self.totals.retire(worker.id)
        worker.close()
        code = worker.process.exitcode
        if worker.retiring or self._stopping is not None:
            log.info("worker %d (pid %s) exited (%s)", worker.id, worker.pid, code)
            return
        if code == RELAY_GONE:  # the hybrid connection does not exist (any more): no worker can serve
            self._boot_error = worker.boot_error or "the hybrid connection is gone"
            self.stop()
            return
        if worker.boot_error is not None and worker.generation == self.generation:
            if not self._ever_online:
                self._boot_error = worker.boot_error
                self.stop()
                return
            if any(w.generation < self.generation for w in self._alive()):
                log.error("reload failed: a new worker could not start; keeping the running generation")
                self.generation -= 1
        self.totals.restarts += 1
        self._failures += 1
        delay = RESTART_DELAYS[min(self._failures - 1, len(RESTART_DELAYS) - 1)]
        self._not_before = time.monotonic() + delay
        log.warning("worker %d (pid %s) died (exit code %s); replacing it in %g s", worker.id, worker.pid, code, delay)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for worker in self._alive():
            if worker.retiring is not None and now > worker.retiring + self.config.graceful_timeout + KILL_MARGIN:
                log.warning("worker %d (pid %s) did not stop in time; killing it", worker.id, worker.pid)
                worker.kill()
            elif self.config.timeout and worker.retiring is None and now - worker.last_seen > self.config.timeout + (
                    self.config.open_timeout if worker.state == "booting" else 0.0):
                log.critical("WORKER TIMEOUT: worker %d (pid %s) silent for %g s; killing it", worker.id, worker.pid,
                             self.config.timeout)
                worker.kill()

    # ------------------------------------------------------------------ pid file and the end

    def _write_pidfile(self) -> None:
        if self.config.pidfile:
            with open(self.config.pidfile, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")

    def _shut_down(self, previous: Dict[int, Any]) -> None:
        for worker in self._alive():
            worker.kill()
        for worker in list(self.workers.values()):
            worker.process.join(5.0)
            worker.close()
        self.workers.clear()
        signal.set_wakeup_fd(-1)
        for number, handler in previous.items():
            signal.signal(number, handler)
        self._wake_r.close()
        self._wake_w.close()
        if self._health is not None:
            self._health.remove()
        if self.config.pidfile:
            try:
                os.unlink(self.config.pidfile)
            except FileNotFoundError:
                pass
        log.info("arbiter %d stopped", os.getpid())
