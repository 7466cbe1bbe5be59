"""Fair admission under slow senders: uploads dribbled a byte at a time must not starve others.

Attackers (from 127.0.0.2, so per-client caps can tell them from the healthy sender on 127.0.0.1)
declare a huge body and send a byte every half second: never idle long enough for the body idle
deadline, so each would hold one of the listener's rendezvous slots for hours. Each test prints its
figures as one JSON line (``-s``): how many attackers were answered (and with what) while still
sending, and whether the legitimate 100 kB POST made in the middle of the attack succeeded.
"""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest
import requests
import requests.adapters

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn._sas import generate_sas_token
from hybridconn.emulator import ClientLimits, RelayEmulator
from tests.support.endpoints import make_client, make_listener

ATTACKER = "127.0.0.2"
BOUND = 60.0  # seconds an attack may take to be dealt with, on a loaded machine
DRIBBLE = 0.5  # seconds between an attacker's body bytes
LEGIT_BODY = bytes(range(256)) * 400  # 102,400 bytes: too large for the control channel


def _length(req: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(body=b"got %d" % len(req.body))


def _address(relay: RelayEmulator) -> Tuple[str, int]:
    host, port = relay.namespace.split("://", 1)[1].strip("/").rsplit(":", 1)
    return host, int(port)


def _token(relay: RelayEmulator) -> str:
    host, port = _address(relay)
    name, key = relay.keyring.key()
    return generate_sas_token(f"http://{host}:{port}/hc1", name, key)


class Attacker:
    """One slow upload on a raw socket: a head declaring ``declared`` bytes, then a byte at a time."""

    def __init__(self, relay: RelayEmulator, declared: int, number: int) -> None:
        self.sock = socket.socket()
        self.sock.bind((ATTACKER, 0))
        self.sock.settimeout(10.0)
        self.sock.connect(_address(relay))
        head = (f"POST /hc1/slow/{number} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
                f"ServiceBusAuthorization: {_token(relay)}\r\n\r\n").encode()
        self.sock.sendall(head + b"x" * 16)
        self.sent = 16
        self.reply = b""
        self.closed = False

    @property
    def status(self) -> Optional[int]:
        if not self.reply.startswith(b"HTTP/1.1 ") or len(self.reply) < 12:
            return None
        return int(self.reply[9:12])

    def dribble(self) -> None:
        if self.closed or self.status is not None:
            return
        try:
            self.sock.send(b"x")
            self.sent += 1
        except OSError:
            self.closed = True

    def take(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if data:
            self.reply += data
        else:
            self.closed = True


def _attack(relay: RelayEmulator, count: int, declared: int, expect_answered: int,
            during: Any = None) -> Dict[str, Any]:
    """Start ``count`` attackers, wait until ``expect_answered`` of them were answered while still
    sending (their body far from done), run ``during()``, and return the figures."""
    attackers = [Attacker(relay, declared, i) for i in range(count)]
    result: Dict[str, Any] = {}
    try:
        deadline = time.monotonic() + BOUND
        next_byte = time.monotonic() + DRIBBLE
        while time.monotonic() < deadline:
            if sum(a.status is not None for a in attackers) >= expect_answered:
                break
            socks = [a.sock for a in attackers if not a.closed]
            readable, _, _ = select.select(socks, [], [], 0.1)
            for attacker in attackers:
                if attacker.sock in readable:
                    attacker.take()
            if time.monotonic() >= next_byte:
                for attacker in attackers:
                    attacker.dribble()
                next_byte = time.monotonic() + DRIBBLE
        if during is not None:
            result = during()
    finally:
        figures = _figures(attackers, declared)
        for attacker in attackers:
            attacker.sock.close()
    figures.update(result)
    return figures


def _figures(attackers: List[Attacker], declared: int) -> Dict[str, Any]:
    statuses: Dict[str, int] = {}
    for attacker in attackers:
        key = str(attacker.status) if attacker.status is not None else "waiting"
        statuses[key] = statuses.get(key, 0) + 1
    answered = [a for a in attackers if a.status is not None]
    return {
        "attackers": len(attackers), "declared_bytes": declared, "statuses": statuses,
        "answered_with_close": sum(b"connection: close" in a.reply.lower() for a in answered),
        "most_body_bytes_sent_before_answer": max((a.sent for a in answered), default=0),
    }


def _legit_post(relay: RelayEmulator) -> Dict[str, Any]:
    with make_client(relay) as client:
        response = client.request("POST", "/legit", data=LEGIT_BODY, timeout=BOUND)
    return {"legit_status": response.status_code, "legit_body": response.content.decode("ascii", "replace")}


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "limits": ClientLimits(max_uploads_per_client=4)}


def _slots_held(relay: RelayEmulator, count: int, slots: int, cap: int) -> None:
    with make_listener(relay, max_rendezvous=slots) as listener:
        listener.on_request(_length)
        listener.open()
        figures = _attack(relay, count, 50_000_000, count - cap, during=lambda: _legit_post(relay))
    figures.update({"listener_slots": slots, "uploads_per_client": cap})
    print(json.dumps(figures))
    # Every attacker over the cap was answered 503 at once (and told the connection closes), long
    # before its 50 MB body: the refusal never waited on the body it refused.
    assert figures["statuses"].get("503") == count - cap, figures
    assert figures["answered_with_close"] == count - cap, figures
    assert figures["most_body_bytes_sent_before_answer"] < 10_000, figures
    assert figures["legit_status"] == 200 and figures["legit_body"] == "got %d" % len(LEGIT_BODY), figures


def test_slow_uploads_from_one_client_cannot_hold_every_listener_slot(relay: RelayEmulator) -> None:
    _slots_held(relay, 12, 6, 4)


@pytest.mark.parametrize("relay_emulator_options", [{"hybrid_connections": ["hc1"],
                                                      "limits": ClientLimits(max_uploads_per_client=0)}])
def test_a_busy_listener_refuses_slow_uploads_without_reading_them(relay: RelayEmulator) -> None:
    """No per-client cap: the listener's slots fill, and its overflow answers 503 at the request's
    head (before, each refusal read the whole body on one of two overflow threads)."""
    with make_listener(relay, max_rendezvous=3) as listener:
        listener.on_request(_length)
        listener.open()
        figures = _attack(relay, 9, 50_000_000, 6)
    print(json.dumps(figures))
    assert figures["statuses"].get("503") == 6, figures
    assert figures["answered_with_close"] == 6, figures
    assert figures["most_body_bytes_sent_before_answer"] < 10_000, figures


@pytest.mark.parametrize("relay_emulator_options", [{"hybrid_connections": ["hc1"],
                                                      "limits": ClientLimits(max_request_body=64 << 20)}])
def test_a_declared_body_over_the_limit_is_refused_413_at_its_head(relay: RelayEmulator) -> None:
    """1 GB declared, the emulator's ``max_request_body`` 64 MiB: 413 at once, then the connection
    closes; the legitimate POST made meanwhile succeeds."""
    with make_listener(relay) as listener:
        listener.on_request(_length)
        listener.open()
        figures = _attack(relay, 4, 1_000_000_000, 4, during=lambda: _legit_post(relay))
    print(json.dumps(figures))
    assert figures["statuses"].get("413") == 4, figures
    assert figures["answered_with_close"] == 4, figures
    assert figures["most_body_bytes_sent_before_answer"] < 10_000, figures
    assert figures["legit_status"] == 200, figures


@pytest.mark.stress
@pytest.mark.timeout(600)
@pytest.mark.parametrize("relay_emulator_options", [{"hybrid_connections": ["hc1"]}])
def test_slow_senders_stress(relay: RelayEmulator) -> None:
    """The issue's numbers: 130 slow senders against the defaults (128 listener slots, 64 uploads
    per client)."""
    _slots_held(relay, 130, 128, ClientLimits().max_uploads_per_client)


@pytest.mark.parametrize("relay_emulator_options", [{"hybrid_connections": ["hc1"],
                                                      "limits": ClientLimits(max_uploads_per_client=1)}])
def test_a_fast_upload_refused_at_its_head_still_reads_the_answer(relay: RelayEmulator) -> None:
    """Answered 503 while its 10 MB body is still going out, then closed: an ordinary HTTP client
    (requests) gets the 503, not a reset, every time."""
    host, port = _address(relay)
    token = _token(relay)
    statuses: Dict[str, int] = {}
    with make_listener(relay) as listener:
        listener.on_request(_length)
        listener.open()
        holder = Attacker(relay, 50_000_000, 0)  # from 127.0.0.2: same client as below
        try:
            deadline = time.monotonic() + BOUND
            while relay.running and time.monotonic() < deadline:  # until its upload holds the slot
                if listener.stats.get("rendezvous_opened", 0) >= 1:
                    break
                time.sleep(0.05)
            session = requests.Session()
            session.mount("http://", _SourceAdapter(ATTACKER))
            for _ in range(5):
                try:
                    response = session.post(f"http://{host}:{port}/hc1/fast", data=b"y" * 10_000_000,
                                            headers={"ServiceBusAuthorization": token}, timeout=BOUND)
                    key = str(response.status_code)
                except requests.RequestException as exc:
                    key = type(exc).__name__
                statuses[key] = statuses.get(key, 0) + 1
            session.close()
        finally:
            holder.sock.close()
    print(json.dumps({"fast_10MB_uploads": statuses}))
    assert statuses == {"503": 5}, statuses


class _SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from ``source`` (so the emulator counts them as the holder's client)."""

    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.mark.parametrize("bad", [{"max_uploads_per_client": -1}, {"max_uploads_per_client": True},
                                 {"max_request_body": -1}, {"max_request_body": True}])
def test_bad_upload_limits_are_refused_with_a_clear_error(bad: Dict[str, Any]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        ClientLimits(**bad)
