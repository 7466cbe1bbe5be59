"""Fixtures for the emulator's own tests (helpers: tests/support/plain_clients.py)."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import Control


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    """Short relay-side timeouts, so a test of them is quick."""
    return {"hybrid_connections": ["hc1"], "response_timeout": 10.0, "accept_timeout": 10.0}


@pytest.fixture
def control(relay: RelayEmulator) -> Iterator[Control]:
    channel = Control(relay)
    yield channel
    channel.close()
