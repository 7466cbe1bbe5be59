"""Worker processes as the arbiter sees them: starting one, hearing from it, signalling it.

Workers are ``multiprocessing`` processes: ``spawn`` (a fresh interpreter that
imports the application itself, as gunicorn's workers do without
``--preload``), or with ``--preload`` on POSIX ``forkserver``, whose server
process imports the application once, so every worker is forked with it
loaded. The arbiter never forks itself: it runs threads (the metrics server,
an embedded emulator), and forking a process with threads is unsafe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any, Dict, List, Optional

from .app import split_spec
from .settings import ServeConfig
from .worker import run_worker

__all__ = ["Worker", "Spawner"]

log: logging.Logger = logging.getLogger(__name__)


class Worker:
    """One worker process and its status pipe.

    :ivar state: ``booting``, ``online``, ``offline``, ``draining`` or ``stopped``.
    :ivar retiring: when it was told to drain (monotonic), or None.
    :ivar retire_requested: it asked to be replaced (``--max-requests``).
    """

    def __init__(self, worker_id: int, generation: int, process: Any, status: Any) -> None:
        self.id = worker_id
        self.generation = generation
        self.process = process
        self.status: Any = status  # the worker's end of a multiprocessing pipe, None once closed
        self.state: str = "booting"
        self.started: float = time.monotonic()
        self.last_seen: float = self.started
        self.retiring: Optional[float] = None
        self.retire_requested = False
        self.boot_error: Optional[str] = None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid  # type: ignore[no-any-return]

    @property
    def alive(self) -> bool:
        return self.process.exitcode is None

    def waitables(self) -> List[Any]:
        found = [self.process.sentinel]
        if self.status is not None:
            found.append(self.status)
        return found

    def receive(self) -> List[Dict[str, Any]]:
        """Every message waiting on the pipe (none once it is closed)."""
        messages: List[Dict[str, Any]] = []
        while self.status is not None:
            try:
                if not self.status.poll():
                    break
                message = self.status.recv()
            except (EOFError, OSError):
                self.status.close()
                self.status = None
                break
            self.last_seen = time.monotonic()
            if isinstance(message, dict):
                messages.append(message)
                kind = message.get("kind")
                if kind in ("online", "offline", "draining", "stopped"):
                    self.state = kind
        return messages

    def _signal(self, number: int) -> None:
        if self.pid is not None and self.alive:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass

    def retire(self) -> None:
        """Drain and exit (SIGTERM)."""
        if self.retiring is None:
            self.retiring = time.monotonic()
            self._signal(signal.SIGTERM)

    def quit(self) -> None:
        """Exit at once."""
        self._signal(getattr(signal, "SIGQUIT", signal.SIGTERM))

    def kill(self) -> None:
        self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))

    def close(self) -> None:
        if self.status is not None:
            self.status.close()
            self.status = None


class Spawner:
    """Starts worker processes with the current settings."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._context = self._choose_context(config)

    @staticmethod
    def _choose_context(config: ServeConfig) -> Any:
        if config.preload and "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            module, _ = split_spec(config.app or "")
            # The server process imports these once; every worker is forked from it.
            context.set_forkserver_preload(["hybridconn.serving.worker", module])
            return context
        return multiprocessing.get_context("spawn")

    def start(self, worker_id: int, generation: int) -> Worker:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=run_worker, args=(self.config.as_dict(), worker_id, sender),
                                        name=f"hybridconn-worker-{worker_id}", daemon=False)
        process.start()
        sender.close()  # the child holds its own copy; EOF on ours means it is gone
        return Worker(worker_id, generation, process, receiver)
