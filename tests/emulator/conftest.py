"""Fixtures for the emulator's own tests (see emu_helpers.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from emu_helpers import Control
from hybridconn.emulator import RelayEmulator


@pytest.fixture
def relay() -> Iterator[RelayEmulator]:
    with RelayEmulator(hybrid_connections=("hc1",), response_timeout=10.0, accept_timeout=10.0) as emulator:
        yield emulator


@pytest.fixture
def control(relay: RelayEmulator) -> Iterator[Control]:
    channel = Control(relay)
    yield channel
    channel.close()
