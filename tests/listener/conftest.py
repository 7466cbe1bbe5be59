"""Fixtures for the listener's tests: an emulator, listeners that always close, a plain sender."""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import pytest
import requests
import websocket

from hybridconn.addresses import token_audience
from hybridconn.auth import AUTH_HEADER, ConnectionString, generate_sas_token
from hybridconn.listener import HybridConnectionListener


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy settings must not route loopback traffic."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class Sender:
    """Plain ``requests`` and ``websocket-client`` calls to the emulator, signed with a Send token."""

    def __init__(self, relay: Any, path: str = "hc1") -> None:
        self.relay = relay
        self.path = path
        cs = ConnectionString.parse(relay.connection_string(path))
        self._key_name, self._key = cs.shared_access_key_name, cs.shared_access_key
        self.base = relay.namespace.replace("ws://", "http://")
        self._sockets: List[websocket.WebSocket] = []

    def token(self, ttl: float = 300) -> str:
        return generate_sas_token(token_audience(self.relay.namespace, self.path), self._key_name, self._key, ttl)

    @property
    def headers(self) -> dict:
        return {AUTH_HEADER: self.token()}

    def url(self, suffix: str = "") -> str:
        return f"{self.base}/{self.path}{suffix}"

    def request(self, method: str, suffix: str = "", session: Optional[requests.Session] = None,
                **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {}, **self.headers)
        kwargs.setdefault("timeout", 30)
        if session is not None:
            return session.request(method, self.url(suffix), headers=headers, **kwargs)
        with requests.Session() as own:
            return own.request(method, self.url(suffix), headers=headers, **kwargs)

    def connect(self, suffix: str = "", query: str = "", headers: Optional[dict] = None,
                subprotocols: Optional[Sequence[str]] = None) -> websocket.WebSocket:
        url = f"{self.relay.namespace}/$hc/{self.path}{suffix}?{query + '&' if query else ''}sb-hc-action=connect"
        header = [f"{AUTH_HEADER}: {self.token()}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        ws = websocket.create_connection(url, header=header, timeout=30, subprotocols=subprotocols,
                                         skip_utf8_validation=True)
        self._sockets.append(ws)
        return ws

    def close(self) -> None:
        for ws in self._sockets:
            try:
                ws.shutdown()
            except Exception:  # noqa: BLE001
                pass


def read_close(ws: websocket.WebSocket) -> Tuple[int, str]:
    """Read until the peer's close frame; its (code, reason)."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
            return code, data[2:].decode("utf-8", "replace")


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
