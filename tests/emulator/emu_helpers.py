"""Helpers for the emulator's own tests: plain websocket-client and requests, no hybridconn listener."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
import requests
import websocket

from hybridconn._transport import _status_reason

from hybridconn.auth import generate_sas_token
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator

TIMEOUT = 10.0


def token(
    relay: RelayEmulator,
    path: str = "hc1",
    key_name: str = DEFAULT_KEY_NAME,
    key: str = DEFAULT_KEY,
    ttl: float = 300,
    resource: Optional[str] = None,
) -> str:
    return generate_sas_token(resource or f"http://127.0.0.1:{relay.port}/{path}", key_name, key, ttl)


def hc_url(relay: RelayEmulator, path: str, action: str, query: str = "") -> str:
    extra = f"{query}&" if query else ""
    return f"{relay.namespace}/$hc/{path}?{extra}sb-hc-action={action}"


def open_ws(url: str, headers: Sequence[str] = (), subprotocols: Optional[List[str]] = None, **options: Any) -> websocket.WebSocket:
    return websocket.create_connection(url, header=list(headers), subprotocols=subprotocols, timeout=TIMEOUT, **options)


def refused(url: str, headers: Sequence[str] = (), **options: Any) -> websocket.WebSocketBadStatusException:
    """The handshake must fail with an HTTP status; returns the exception."""
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        ws = open_ws(url, headers, **options)
        shut(ws)
    return info.value


def status_message(exc: websocket.WebSocketBadStatusException) -> str:
    # websocket-client 1.9.0 (what Python 3.9 gets) has no status_message; the library's reader copes.
    return _status_reason(exc)


def shut(ws: Optional[websocket.WebSocket]) -> None:
    """Close a websocket-client socket for good (it keeps the socket after a peer-initiated close)."""
    if ws is None:
        return
    try:
        if ws.connected:
            ws.close(timeout=2)
    except Exception:  # noqa: BLE001 - the peer may be gone already
        pass
    ws.shutdown()


class Control:
    """A raw listener control channel."""

    def __init__(self, relay: RelayEmulator, path: str = "hc1", tok: Optional[str] = None, query: str = "") -> None:
        self.relay = relay
        self.path = path
        self.ws = open_ws(hc_url(relay, path, "listen", query), [f"ServiceBusAuthorization: {tok or token(relay, path)}"])

    def recv_frame(self, timeout: float = TIMEOUT) -> Tuple[int, bytes]:
        self.ws.settimeout(timeout)
        frame = self.ws.recv_data_frame(control_frame=False)
        opcode, frame = frame
        data = frame.data
        while not frame.fin:  # pragma: no cover - websocket-client joins fragments itself
            _, frame = self.ws.recv_data_frame()
            data += frame.data
        return opcode, data

    def recv_json(self, timeout: float = TIMEOUT) -> Dict[str, Any]:
        opcode, data = self.recv_frame(timeout)
        assert opcode == websocket.ABNF.OPCODE_TEXT, f"expected a text frame, got opcode {opcode}"
        return json.loads(data.decode("utf-8"))

    def recv_request(self, timeout: float = TIMEOUT) -> Tuple[Dict[str, Any], Optional[bytes]]:
        message = self.recv_json(timeout)["request"]
        body = None
        if message.get("body"):
            opcode, body = self.recv_frame(timeout)
            assert opcode == websocket.ABNF.OPCODE_BINARY
        return message, body

    def respond(self, request_id: str, status: Any = 200, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None, description: Optional[str] = None) -> None:
        respond(self.ws, request_id, status, headers, body, description)

    def close(self) -> None:
        shut(self.ws)


def respond(ws: websocket.WebSocket, request_id: str, status: Any = 200, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None, description: Optional[str] = None) -> None:
    head: Dict[str, Any] = {"requestId": request_id, "statusCode": status, "responseHeaders": headers or {}, "body": body is not None}
    if description is not None:
        head["statusDescription"] = description
    ws.send(json.dumps({"response": head}))
    if body is not None:
        ws.send_binary(body)


class Background:
    """Run a callable in a plain (non-hybridconn) thread and collect its result or exception."""

    def __init__(self, func: Any, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(func, args, kwargs), name="test-background", daemon=True)
        self._thread.start()

    def _run(self, func: Any, args: Any, kwargs: Any) -> None:
        try:
            self.result = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def join(self, timeout: float = 20.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "background call did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def http_get(url: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 20)
    with requests.Session() as session:
        return session.request(kwargs.pop("method", "GET"), url, **kwargs)


PY = sys.executable
