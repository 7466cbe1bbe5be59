"""Fixtures for the CLI tests (helpers live in cli_procs.py)."""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List

import pytest

from cli_procs import CliProcess


@pytest.fixture
def cli_process() -> Iterator[Callable[[List[str], Dict[str, str]], CliProcess]]:
    """Start ``hybridconn ARGS...`` in the background; every process is killed after the test."""
    started: List[CliProcess] = []

    def start(args: List[str], env: Dict[str, str]) -> CliProcess:
        proc = CliProcess(args, env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
