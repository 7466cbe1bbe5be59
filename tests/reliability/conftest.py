"""Fixtures for the reliability tests: no proxy from the environment on loopback traffic."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy settings must not route loopback traffic."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
