"""Fixtures for the listener's tests: an emulator, listeners that always close, a plain sender."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List

import pytest

from hybridconn.listener import HybridConnectionListener
from tests.support.endpoints import make_listener as build_listener
from tests.support.plain_clients import Sender


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1", "hc2"]}


@pytest.fixture
def sender(relay: Any) -> Iterator[Sender]:
    s = Sender(relay)
    yield s
    s.close()


@pytest.fixture
def make_listener(relay: Any) -> Iterator[Callable[..., HybridConnectionListener]]:
    """Build listeners for ``hc1`` (closed at teardown); options pass through."""
    made: List[HybridConnectionListener] = []

    def make(path: str = "hc1", open: bool = True, **options: Any) -> HybridConnectionListener:
        listener = build_listener(relay, path, **options)
        made.append(listener)
        if open:
            listener.open(timeout=15)
        return listener

    yield make
    for listener in made:
        listener.close(timeout=10)
