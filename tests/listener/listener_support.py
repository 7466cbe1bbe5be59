"""Helpers for the listener's tests: a plain sender (requests + websocket-client) and callback recording."""

from __future__ import annotations

import struct
import threading
from typing import Any, List, Optional, Sequence, Tuple

import requests
import websocket

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn.addresses import token_audience
from hybridconn.auth import AUTH_HEADER, ConnectionString, generate_sas_token
from hybridconn.listener import HybridConnectionListener


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


def ok(req: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(body=b"ok:" + req.body)


class Events:
    """Records the listener's status callbacks."""

    def __init__(self, listener: HybridConnectionListener) -> None:
        self.online = threading.Semaphore(0)
        self.offline_errors: List[Any] = []
        self.connecting = 0
        self.offline = threading.Event()
        listener.on_online = self.online.release
        listener.on_offline = self._offline
        listener.on_connecting = self._connecting

    def _offline(self, error: Any) -> None:
        self.offline_errors.append(error)
        self.offline.set()

    def _connecting(self) -> None:
        self.connecting += 1


class HoldingProxy:
    """An HTTP CONNECT proxy on 127.0.0.1. Once :meth:`hold` is called, new tunnels open but lead
    nowhere: every WebSocket handshake through one stalls (a relay that took the connection and
    stopped answering). Tunnels opened before keep working."""

    def __init__(self) -> None:
        import socket

        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._holding = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: List[Any] = []
        self._threads: List[threading.Thread] = []
        self.held = threading.Semaphore(0)  # released once per tunnel held
        self._spawn(self._accept_loop)

    def hold(self) -> None:
        self._holding.set()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="test-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _keep(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept_loop(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            client.settimeout(None)
            self._keep(client)
            self._spawn(self._tunnel, client)

    def _tunnel(self, client: Any) -> None:
        import socket

        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            if self._holding.is_set():
                # The tunnel opens, but what the listener sends goes nowhere: its WebSocket
                # handshake waits for an answer that never comes (closed by close()).
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.held.release()
                while client.recv(65536):
                    pass
                return
            host, port = head.split(b" ", 2)[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            upstream.settimeout(None)
            self._keep(upstream)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._spawn(self._pump, upstream, client)
            self._pump(client, upstream)
        except OSError:
            return

    @staticmethod
    def _pump(source: Any, target: Any) -> None:
        import socket

        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        import socket

        self._stop.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(5)
        for sock in sockets:
            sock.close()
        self._server.close()
