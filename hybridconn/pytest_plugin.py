"""pytest plugin: a ``relay_emulator`` fixture for testing your own listeners and senders offline.

Installing hybridconn registers it (entry point ``pytest11``)::

    def test_my_listener(relay_emulator):
        cs = relay_emulator.connection_string("orders")
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .emulator import RelayEmulator


@pytest.fixture
def relay_emulator() -> Iterator["RelayEmulator"]:
    """A running :class:`~hybridconn.emulator.RelayEmulator` on 127.0.0.1 (any free port), stopped afterwards."""
    from .emulator import RelayEmulator

    with RelayEmulator(hybrid_connections=("hc1",)) as relay:
        yield relay
