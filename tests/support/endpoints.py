"""hybridconn's own listener and client on an emulator, the handlers the tests give them, and
a record of a listener's status callbacks."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

from hybridconn import (
    HybridConnection, HybridConnectionClient, HybridConnectionListener, RelayedRequest, RelayedResponse,
)

#: Tests' listeners renew their token rarely, unless a test asks for another ``token_ttl``.
TOKEN_TTL = 3600


def emulator_options(*names: str, **fidelity_changes: Any) -> Dict[str, Any]:
    """``relay_emulator_options`` with hybrid connections ``names`` (default ``hc1``) and the profile
    ``HYBRIDCONN_EMULATOR_PROFILE`` names, changed where a test needs one behaviour whatever the profile
    (``@pytest.mark.parametrize("relay_emulator_options", [emulator_options(on_ping="answer")])``)."""
    from hybridconn.emulator.fidelity import from_environment

    return {"hybrid_connections": list(names or ["hc1"]), "fidelity": from_environment().replace(**fidelity_changes)}


def keepalive_for(relay: Any, default: float = 30.0) -> float:
    """A ping interval that keeps a channel alive on ``relay``: well under its idle timeout
    (the pessimistic profile drops idle sockets after seconds, as users would then configure)."""
    fidelity = getattr(relay, "fidelity", None)
    idle = getattr(fidelity, "idle_timeout", None)
    return default if idle is None else min(default, idle / 3)


def make_listener(relay: Any, path: str = "hc1", **options: Any) -> HybridConnectionListener:
    """A listener (not opened) for ``path`` on ``relay``; options pass through."""
    token_ttl = options.pop("token_ttl", TOKEN_TTL)
    options.setdefault("ping_interval", keepalive_for(relay))
    return HybridConnectionListener.from_connection_string(relay.connection_string(path), token_ttl=token_ttl,
                                                           **options)


def make_client(relay: Any, path: str = "hc1", **options: Any) -> HybridConnectionClient:
    return HybridConnectionClient.from_connection_string(relay.connection_string(path), **options)


def ok(req: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(body=b"ok:" + req.body)


def echo_request(req: RelayedRequest) -> RelayedResponse:
    """Echo the body with the path, so a response can be matched to its request byte for byte."""
    return RelayedResponse(status=200, headers={"Content-Type": "application/octet-stream"},
                           body=req.path.encode() + b"|" + req.body)


def echo_connection(conn: HybridConnection) -> None:
    for message in conn:
        conn.send(message)


class StatusLog:
    """Records a listener's status callbacks; ``online`` is released every time it comes online."""

    def __init__(self, listener: HybridConnectionListener) -> None:
        self.online = threading.Semaphore(0)
        self.online_at: List[float] = []
        self.offline_errors: List[Any] = []
        self.offline = threading.Event()
        self.connecting = 0
        listener.on_online = self._online
        listener.on_offline = self._offline
        listener.on_connecting = self._connecting

    def _online(self) -> None:
        self.online_at.append(time.monotonic())
        self.online.release()

    def _offline(self, error: Any) -> None:
        self.offline_errors.append(error)
        self.offline.set()

    def _connecting(self) -> None:
        self.connecting += 1
