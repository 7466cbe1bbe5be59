"""Fixtures for the listener's tests: an emulator, listeners that always close, a plain sender."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

from hybridconn.listener import HybridConnectionListener

from listener_support import Sender


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy settings must not route loopback traffic."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def relay() -> Iterator[Any]:
    from hybridconn.emulator import RelayEmulator

    with RelayEmulator(hybrid_connections=("hc1", "hc2")) as running:
        yield running


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
        token_ttl = options.pop("token_ttl", 3600)
        listener = HybridConnectionListener.from_connection_string(relay.connection_string(path), token_ttl=token_ttl,
                                                                   **options)
        made.append(listener)
        if open:
            listener.open(timeout=15)
        return listener

    yield make
    for listener in made:
        listener.close(timeout=10)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Long ``stress`` runs only when asked for (``-m stress``); deselected, not skipped, otherwise."""
    if "stress" in (config.getoption("-m") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("stress") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
