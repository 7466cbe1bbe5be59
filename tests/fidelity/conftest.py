"""Fixtures for the emulator-fidelity tests: each test names the behaviour it checks, so the plugin's
emulator runs the ``default`` profile here whatever ``HYBRIDCONN_EMULATOR_PROFILE`` says (a module
that needs another overrides ``relay_emulator_options``)."""

from __future__ import annotations

from typing import Any, Dict

import pytest


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "fidelity": "default"}
