"""A fake relay for fuzzing the listener: it takes the listener's control channel on 127.0.0.1 and
lets a test write any frame at all onto it - valid or not, fragmented or not - and read what the
listener writes back. Anything other than a listen handshake is answered 404.

Frames are built and parsed by hand (RFC 6455), because a WebSocket library would refuse to send
the broken sequences the fuzzer needs.
"""

from __future__ import annotations

import json
import queue
import socket
import struct
import threading
from typing import Any, Dict, List, Optional, Tuple

from tests.support.sockets import READ_SIZE, read_http_head, shut, websocket_accept

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server frame (unmasked)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


class ChannelClosed(Exception):
    """The listener closed (or dropped) this control channel."""


class FakeChannel:
    """One accepted control channel."""

    def __init__(self, sock: socket.socket, target: str, headers: Optional[Dict[str, str]] = None) -> None:
        self.sock = sock
        self.target = target
        #: The handshake's headers, names lower-cased.
        self.headers = dict(headers or {})
        self._buffer = b""
        self._send_lock = threading.Lock()
        self.closed = False

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self.closed = True
                raise ChannelClosed(str(exc)) from exc

    def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.send_raw(frame(opcode, payload, fin))

    def send_json(self, message: Dict[str, Any], body: Optional[bytes] = None) -> None:
        data = frame(TEXT, json.dumps(message).encode())
        if body is not None:
            data += frame(BINARY, body)
        self.send_raw(data)

    def _read_exact(self, size: int, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        while len(self._buffer) < size:
            try:
                chunk = self.sock.recv(READ_SIZE)
            except socket.timeout:
                raise
            except OSError as exc:
                self.closed = True
                raise ChannelClosed(str(exc)) from exc
            if not chunk:
                self.closed = True
                raise ChannelClosed("EOF")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_frame(self, timeout: float = 10.0) -> Tuple[int, bytes, bool]:
        """The next frame from the listener (pings answered, a close echoed and raised)."""
        while True:
            b0, b1 = self._read_exact(2, timeout)
            fin, opcode, masked, size = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._read_exact(2, timeout))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._read_exact(8, timeout))[0]
            mask = self._read_exact(4, timeout) if masked else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(size, timeout))) if masked else \
                self._read_exact(size, timeout)
            if opcode == PING:
                self.send(PONG, payload)
                continue
            if opcode == PONG:
                continue
            if opcode == CLOSE:
                try:
                    self.send(CLOSE, payload[:2])
                except ChannelClosed:
                    pass
                self.closed = True
                raise ChannelClosed(f"close frame {payload[:2].hex()}")
            return opcode, payload, fin

    def read_response(self, request_id: str, timeout: float = 10.0) -> Tuple[Dict[str, Any], Optional[bytes]]:
        """Skip frames until the response to ``request_id``; returns it with its body (if any)."""
        while True:
            opcode, payload, _ = self.read_frame(timeout)
            if opcode != TEXT:
                continue
            try:
                message = json.loads(payload.decode("utf-8"))
            except ValueError:
                continue
            response = message.get("response") if isinstance(message, dict) else None
            if not isinstance(response, dict):
                continue
            body = None
            if response.get("body"):
                body_opcode, body, _ = self.read_frame(timeout)
                assert body_opcode == BINARY, f"expected a body frame, got opcode {body_opcode}"
            if response.get("requestId") == request_id:
                return response, body

    def close(self) -> None:
        self.closed = True
        shut(self.sock)
        self.sock.close()


class FakeRelay:
    """Accepts control channels; :meth:`channel` hands out the newest one."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.namespace = f"ws://127.0.0.1:{self.port}"
        self._channels: "queue.Queue[FakeChannel]" = queue.Queue()
        self._all: List[FakeChannel] = []
        self.refused = 0
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, name="test-fake-relay", daemon=True)
        self._thread.start()

    def address(self, action: str, request_id: str) -> str:
        return f"{self.namespace}/$hc/hc1?sb-hc-action={action}&sb-hc-id={request_id}"

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            try:
                self._handshake(sock)
            except OSError:
                sock.close()

    def _handshake(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        read = read_http_head(sock)
        if read is None:
            raise OSError("no request")
        head = read[1]
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "sb-hc-action=listen" not in target or "sec-websocket-key" not in headers:
            self.refused += 1
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            sock.close()
            return
        accept = websocket_accept(headers["sec-websocket-key"])
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        sock.settimeout(None)
        channel = FakeChannel(sock, target, headers)
        self.accepted += 1
        self._all.append(channel)
        self._channels.put(channel)

    def next_channel(self, timeout: float = 15.0) -> FakeChannel:
        return self._channels.get(timeout=timeout)

    def close(self) -> None:
        shut(self._server)
        self._server.close()
        self._thread.join(5)
        for channel in self._all:
            if not channel.closed or channel.sock.fileno() >= 0:
                channel.close()
