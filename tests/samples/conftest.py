"""Fixtures for the samples tests (helpers live in sample_procs.py)."""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List

import pytest

from sample_procs import Background


@pytest.fixture
def background() -> Iterator[Callable[[List[str], Dict[str, str]], Background]]:
    """Start processes with ``background([argv...], env)``; all are killed after the test."""
    started: List[Background] = []

    def start(argv: List[str], env: Dict[str, str]) -> Background:
        proc = Background(argv, env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
