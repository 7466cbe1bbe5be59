"""Fuzz the emulator over raw sockets: malformed HTTP, bad upgrades, bad frames, invalid UTF-8,
oversized header sections. Every input gets a clear 4xx or a WebSocket close code (or, for an
incomplete request, a plain close) - never a 5xx, a 101 for garbage, or a hang - while a healthy
listener and sender on the same emulator keep working throughout."""

from __future__ import annotations

import base64
import os
import socket
import struct
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridconn.auth import generate_sas_token
from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from tests.support.endpoints import StatusLog, echo_connection, echo_request, make_client, make_listener


IO_TIMEOUT = 15.0


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, read everything the emulator answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the emulator may have answered and closed already
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def _status(answer: bytes) -> int:
    """The HTTP status of an answer; 0 when the emulator closed without one."""
    if not answer:
        return 0
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer[9:12])


def _masked(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _upgrade(relay: RelayEmulator, path: str, action: str, extra: str = "", token: bool = True) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    auth = ""
    if token:
        tok = generate_sas_token(f"http://127.0.0.1:{relay.port}/{path}", DEFAULT_KEY_NAME, DEFAULT_KEY, 300)
        auth = f"ServiceBusAuthorization: {tok}\r\n"
    return (f"GET /$hc/{path}?sb-hc-action={action} HTTP/1.1\r\nHost: 127.0.0.1:{relay.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{auth}{extra}\r\n").encode()


def _close_code(answer: bytes) -> int:
    """After a 101: the close code the emulator sent (0 if it just closed, 1005 if none given)."""
    _, _, frames = answer.partition(b"\r\n\r\n")
    while len(frames) >= 2:
        opcode, size = frames[0] & 0x0F, frames[1] & 0x7F
        offset = 2
        if size == 126:
            size, offset = struct.unpack("!H", frames[2:4])[0], 4
        elif size == 127:
            size, offset = struct.unpack("!Q", frames[2:10])[0], 10
        payload = frames[offset:offset + size]
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        frames = frames[offset + size:]
    return 0


class _Healthy:
    """A listener and a sender on ``hc1`` that must not notice any of the fuzzing."""

    def __init__(self, relay: RelayEmulator) -> None:
        self.listener = make_listener(relay, backoff=(0, 0.2))
        self.listener.on_request = echo_request
        self.listener.on_connection = echo_connection
        self.status = StatusLog(self.listener)
        self.client = make_client(relay)
        self.conn: Any = None
        self.checks = 0
        self.listener.open(timeout=15)
        self.conn = self.client.connect(timeout=15)  # one long-lived socket across the whole fuzz run

    def check(self) -> None:
        self.checks += 1
        body = os.urandom(self.checks % 3 * 40_000)  # some by rendezvous
        response = self.client.request("POST", f"/h{self.checks}", data=body, timeout=(10, 30))
        assert response.content == f"/h{self.checks}|".encode() + body
        self.conn.send(f"still {self.checks}")
        assert self.conn.recv(timeout=10) == f"still {self.checks}"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close(timeout=5)
        self.client.close()
        self.listener.close(timeout=10)


@pytest.fixture
def world() -> Iterator[Tuple[RelayEmulator, _Healthy]]:
    with RelayEmulator(hybrid_connections=["hc1", "fuzz"]) as relay:
        healthy = _Healthy(relay)
        try:
            yield relay, healthy
        finally:
            healthy.close()


# ------------------------------------------------------------------------------------------------
# inputs


HEAD = st.sampled_from([
    b"GET /hc1 HTTP/1.1\r\nHost: x\r\n",
    b"POST /hc1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
    b"GET /$hc/fuzz?sb-hc-action=listen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
])


@st.composite
def malformed_http(draw: Any) -> Tuple[bytes, str]:
    base = bytearray(draw(HEAD))
    for _ in range(draw(st.integers(1, 6))):  # byte flips, insertions, deletions
        where = draw(st.integers(0, len(base)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip" and where < len(base):
            base[where] = draw(st.integers(0, 255))
        elif op == "insert":
            base[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif where < len(base):
            del base[where]
    return bytes(base) + b"\r\n", "malformed-http"


@st.composite
def random_bytes(draw: Any) -> Tuple[bytes, str]:
    return draw(st.binary(min_size=1, max_size=300)) + b"\r\n\r\n", "random-bytes"


def _bad_upgrades(relay: RelayEmulator) -> List[Tuple[bytes, str]]:
    good = _upgrade(relay, "fuzz", "listen").decode()
    cases = [
        good.replace("Sec-WebSocket-Key", "X-No-Key"),
        good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        good.replace("Upgrade: websocket", "Upgrade: h2c"),
        good.replace("Connection: Upgrade", "Connection: keep-alive"),
        good.replace("GET ", "POST ", 1),
        good.replace("sb-hc-action=listen", "sb-hc-action=dance"),
        good.replace("sb-hc-action=listen", "sb-hc-action=accept&sb-hc-id=nope"),
        good.replace("sb-hc-action=listen", "sb-hc-action=request&sb-hc-id=nope"),
        good.replace("/$hc/fuzz", "/$hc/"),
        good.replace("/$hc/fuzz", "/$hc/%ff%fe"),
        good.replace("HTTP/1.1", "HTTP/1.0"),
        good.replace("HTTP/1.1", "HTTP/2.0"),
        _upgrade(relay, "fuzz", "listen", token=False).decode(),
        _upgrade(relay, "fuzz", "connect", token=False).decode(),
        good.replace("ServiceBusAuthorization: ", "ServiceBusAuthorization: \x01"),
    ]
    return [(case.encode("utf-8", "surrogateescape"), "bad-upgrade") for case in cases]


def _oversized(relay: RelayEmulator) -> List[Tuple[bytes, str]]:
    return [
        (b"GET /hc1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", "oversized-headers"),
        (b"GET /hc1 HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(5000)) + b"\r\n",
         "oversized-headers"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "oversized-request-line"),
        (_upgrade(relay, "fuzz", "listen", extra="X-Big: " + "b" * 40_000 + "\r\n"), "oversized-upgrade"),
    ]


@st.composite
def bad_frames(draw: Any) -> Tuple[bytes, str]:
    payload = draw(st.binary(min_size=0, max_size=200))
    kind = draw(st.sampled_from(["invalid-utf8", "unmasked", "reserved-opcode", "rsv-bits", "big-control",
                                 "fragmented-control", "stray-continuation", "garbage", "bad-close-code",
                                 "text-in-the-middle"]))
    if kind == "invalid-utf8":
        return _masked(0x1, b"\xff" + payload), kind
    if kind == "unmasked":
        return _masked(0x2, payload, mask=False), kind
    if kind == "reserved-opcode":
        return _masked(draw(st.sampled_from([0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xF])), payload), kind
    if kind == "rsv-bits":
        return _masked(0x2, payload, rsv=draw(st.sampled_from([0x40, 0x20, 0x10]))), kind
    if kind == "big-control":
        return _masked(0x9, payload + b"x" * 126), kind
    if kind == "fragmented-control":
        return _masked(0x9, payload[:10], fin=False), kind
    if kind == "stray-continuation":
        return _masked(0x0, payload), kind
    if kind == "bad-close-code":
        return _masked(0x8, struct.pack("!H", draw(st.sampled_from([0, 999, 1004, 1005, 1006, 2999, 5000])))), kind
    if kind == "text-in-the-middle":
        return _masked(0x2, payload, fin=False) + _masked(0x1, b"new message"), kind
    return draw(st.binary(min_size=2, max_size=200)), kind


# ------------------------------------------------------------------------------------------------
# the run


def _fuzz(relay: RelayEmulator, healthy: _Healthy, examples: int, record_property: Any) -> None:
    tried: Dict[str, int] = {}
    outcomes: Dict[str, int] = {}
    bad: List[str] = []

    def judge_http(data: bytes, category: str) -> None:
        tried[category] = tried.get(category, 0) + 1
        status = _status(_exchange(relay.port, data))
        outcomes[f"http {status}"] = outcomes.get(f"http {status}", 0) + 1
        if status == 101 or status >= 500:
            bad.append(f"{category}: {status} for {data[:60]!r}")

    def judge_frames(data: bytes, category: str) -> None:
        tried[category] = tried.get(category, 0) + 1
        answer = _exchange(relay.port, _upgrade(relay, "fuzz", "listen") + data)
        assert _status(answer) == 101, answer[:80]
        code = _close_code(answer)
        outcomes[f"close {code}"] = outcomes.get(f"close {code}", 0) + 1
        if code not in (0, 1000, 1002, 1003, 1007, 1008, 1009):
            bad.append(f"{category}: close {code} for {data[:40]!r}")

    for data, category in _bad_upgrades(relay) + _oversized(relay):
        judge_http(data, category)
    healthy.check()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(malformed_http(), random_bytes()))
    def http_inputs(case: Tuple[bytes, str]) -> None:
        judge_http(*case)
        if sum(tried.values()) % 25 == 0:
            healthy.check()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(bad_frames())
    def frame_inputs(case: Tuple[bytes, str]) -> None:
        judge_frames(*case)
        if sum(tried.values()) % 25 == 0:
            healthy.check()

    http_inputs()
    frame_inputs()
    healthy.check()
    assert bad == [], bad[:10]
    assert healthy.status.offline_errors == [], healthy.status.offline_errors
    assert healthy.listener.stats["connects"] == 1
    total = sum(tried.values())
    figures = (f"inputs tried={total} {dict(sorted(tried.items()))}; answers {dict(sorted(outcomes.items()))}; "
               f"healthy round trips={healthy.checks}, control channel never dropped")
    print(f"\n[reliability] emulator fuzz: {figures}")
    record_property("figures", figures)


def test_fuzz_emulator_raw_sockets_400_inputs(world: Tuple[RelayEmulator, _Healthy], record_property: Any) -> None:
    relay, healthy = world
    _fuzz(relay, healthy, 200, record_property)


@pytest.mark.stress
@pytest.mark.timeout(900)
def test_fuzz_emulator_raw_sockets_4000_inputs(world: Tuple[RelayEmulator, _Healthy], record_property: Any) -> None:
    relay, healthy = world
    _fuzz(relay, healthy, 2000, record_property)
