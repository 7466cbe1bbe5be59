"""Fixtures for the sender's tests: a scripted server and a port nobody listens on."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.scripted_server import ScriptedServer, scripted_server
from tests.support.sockets import free_port


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with scripted_server() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    return free_port()
