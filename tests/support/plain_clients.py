"""The relay spoken to with plain websocket-client and requests: no hybridconn listener or client.

For the emulator's own tests (a raw :class:`Control` channel, handshakes that must be refused)
and for the listener's (a :class:`Sender` that signs its calls as any HTTP client would).
"""

from __future__ import annotations

import json
import struct
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
import requests
import websocket

from hybridconn._transport import _status_reason
from hybridconn.addresses import token_audience
from hybridconn.auth import AUTH_HEADER, ConnectionString, generate_sas_token
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


def open_ws(
    url: str, headers: Sequence[str] = (), subprotocols: Optional[List[str]] = None, **options: Any
) -> websocket.WebSocket:
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
        self.ws = open_ws(
            hc_url(relay, path, "listen", query), [f"ServiceBusAuthorization: {tok or token(relay, path)}"]
        )

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

    def respond(
        self,
        request_id: str,
        status: Any = 200,
        headers: Optional[Dict[str, str]] = None,
        body: Optional[bytes] = None,
        description: Optional[str] = None,
    ) -> None:
        respond(self.ws, request_id, status, headers, body, description)

    def close(self) -> None:
        shut(self.ws)


def respond(
    ws: websocket.WebSocket,
    request_id: str,
    status: Any = 200,
    headers: Optional[Dict[str, str]] = None,
    body: Optional[bytes] = None,
    description: Optional[str] = None,
) -> None:
    head: Dict[str, Any] = {
        "requestId": request_id,
        "statusCode": status,
        "responseHeaders": headers or {},
        "body": body is not None,
    }
    if description is not None:
        head["statusDescription"] = description
    ws.send(json.dumps({"response": head}))
    if body is not None:
        ws.send_binary(body)


class BackgroundCall:
    """Run a callable in a plain (non-hybridconn) thread and collect its result or exception."""

    def __init__(self, func: Any, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(
            target=self._run, args=(func, args, kwargs), name="test-background", daemon=True
        )
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
        url = hc_url(self.relay, self.path + suffix, "connect", query)
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
