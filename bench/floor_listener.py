"""The least a Python listener must do per small relayed HTTP request: a floor to measure against.

    .venv/bin/python bench/profile_request.py --floor     # its CPU per request beside hybridconn's

One thread, no pool, no checks: it reads the control channel's frames, decodes each
``request`` message's JSON, and writes a ``response`` message and its body frame, masked
as a client must (RFC 6455 5.3, with :func:`hybridconn._frames.pack_frame`, what the
listener uses). It answers only what bench/profile_request.py sends (GET, no body) and does
not renew its token, answer pings, follow rendezvous addresses or handle a close: it is not a
listener anyone should run, only the CPU that any correct CPython listener spends on top of
which its own work (validation, header mapping, the handler pool, logging) comes. Numbers in
BENCHMARKS.rst ("Why the listener's CPU cannot reach hyco-https's").
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
from typing import Optional, Tuple

from hybridconn._frames import OP_BINARY, OP_TEXT, pack_frame
from hybridconn.addresses import listen_url, token_audience
from hybridconn.auth import AUTH_HEADER, ConnectionString

__all__ = ["FloorListener"]

BODY = b"hello, world!"


class FloorListener:
    """Serve one control channel on a named thread until :meth:`close`."""

    def __init__(self, connection_string: str) -> None:
        parsed = ConnectionString.parse(connection_string)
        path = parsed.entity_path or ""
        provider = parsed.token_provider(3600)
        token = provider.get_token(token_audience(parsed.namespace, path))[0] if provider is not None else ""
        url = listen_url(parsed.namespace, path)
        host, port = parsed.namespace.host, parsed.namespace.port or 80
        self._sock = socket.create_connection((host, port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = url.split(f"{host}:{port}", 1)[1] if f"{host}:{port}" in url else url.split(host, 1)[1]
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{AUTH_HEADER}: {token}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("the relay closed the control channel during its handshake")
            head += chunk
        status_line, _, rest = head.partition(b"\r\n")
        if b" 101 " not in status_line + b" ":
            raise ConnectionError(f"the relay refused the control channel: {status_line!r}")
        self._buffer = bytearray(rest.partition(b"\r\n\r\n")[2])
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-floor-listener", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._closing.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        self._sock.close()

    def _frame(self) -> Optional[Tuple[int, bytes]]:
        """(opcode, payload) of the next whole frame in the buffer (the relay does not mask)."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        size, offset = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, offset = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < offset + size:
            return None
        opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset:offset + size])
        del buffer[:offset + size]
        return opcode, payload

    def _run(self) -> None:
        sock = self._sock
        while not self._closing.is_set():
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self._buffer += data
            while True:
                frame = self._frame()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode != OP_TEXT:
                    continue  # no request here has a body; pings go unanswered
                request = json.loads(payload).get("request")
                if request is None:
                    continue
                response = json.dumps({"response": {
                    "requestId": request["id"], "statusCode": 200, "statusDescription": "OK",
                    "responseHeaders": {"Content-Type": "application/octet-stream"}, "body": True,
                }}).encode()
                sock.sendall(pack_frame(OP_TEXT, response, masked=True) + pack_frame(OP_BINARY, BODY, masked=True))
