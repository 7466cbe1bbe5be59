"""Never down for good: descriptor exhaustion, one client holding every connection, slowloris heads
and stalled bodies. During every attack a healthy listener+sender pair keeps answering; each test
prints its figures as one JSON line (run with ``-s`` to see them).

Attackers connect from 127.0.0.2 (any 127.x address reaches a 127.0.0.1 server on Linux), so the
per-client caps tell them from the healthy pair on 127.0.0.1, as they would tell two hosts apart."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any, Dict, List, Tuple

import pytest

from hybridconn import HybridConnectionClient, HybridConnectionListener, RelayedRequest, RelayedResponse
from hybridconn.emulator import ClientLimits, RelayEmulator
from tests.support.endpoints import TOKEN_TTL, make_client, make_listener
from tests.support.processes import StartProcess, child_env

ATTACKER = "127.0.0.2"
BOUND = 60.0  # seconds any attack may take to be dealt with, on a loaded machine


def _echo(req: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(body=b"ok:" + req.body)


def _attack_socket(address: Tuple[str, int], timeout: float = 0.5) -> Any:
    sock = socket.socket()
    sock.bind((ATTACKER, 0))
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:  # a full accept backlog: the connection never completes
        sock.close()
        return None
    return sock


def _close_all(socks: List[Any]) -> None:
    for sock in socks:
        if sock is not None:
            sock.close()


def _healthy(client: HybridConnectionClient, count: int) -> Dict[str, int]:
    ok = failed = 0
    for i in range(count):
        try:
            response = client.request("POST", "/h", data=b"%d" % i, timeout=30)
            ok += response.status_code == 200 and response.content == b"ok:%d" % i
            failed += not (response.status_code == 200 and response.content == b"ok:%d" % i)
        except Exception:  # noqa: BLE001 - counted: the figure is what matters
            failed += 1
    return {"ok": ok, "failed": failed}


def _address(where: str) -> Tuple[str, int]:
    """``(host, port)`` of a namespace (``ws://host:port``) or a connection string (``Endpoint=sb://host:port/;...``)."""
    if where.startswith("Endpoint="):
        where = where.split(";", 1)[0][len("Endpoint="):]
    host, port = where.split("://", 1)[1].strip("/").rsplit(":", 1)
    return host, int(port)


# ------------------------------------------------------------------------------------------------
# Descriptor exhaustion, in a child emulator with a 256-descriptor limit


def _child_emulator(start_process: StartProcess, cap: int) -> Any:
    child = start_process(["-m", "tests.support.limited_emulator", "256", str(cap)], child_env(), stdin_pipe=True)
    return child, child.connection_string()


def _child_status(child: Any) -> str:
    child.send_line("status")
    return child.wait_for("STATUS")


def _exhaust(start_process: StartProcess, attackers: int) -> Dict[str, Any]:
    child, cs = _child_emulator(start_process, cap=0)  # no cap: the emulator runs out of descriptors
    listener = HybridConnectionListener.from_connection_string(cs, token_ttl=TOKEN_TTL)
    listener.on_request = _echo
    listener.open(timeout=30)
    client = HybridConnectionClient.from_connection_string(cs)
    socks: List[Any] = []
    try:
        before = _healthy(client, 5)  # the pair's connections are open before the attack
        address = _address(cs)
        socks = [_attack_socket(address, 0.2) for _ in range(attackers)]
        assert child.wait_until(lambda: "accept() failed" in child.stderr, BOUND), child.describe()
        during = _healthy(client, 20)  # over connections opened before the descriptors ran out
        _close_all(socks)
        socks = []
        assert "running=True" in _child_status(child)
        fresh = HybridConnectionClient.from_connection_string(cs)
        try:
            after = _healthy(fresh, 20)  # new connections: the accept loop serves again
        finally:
            fresh.close()
    finally:
        _close_all(socks)
        client.close()
        listener.close()
    figures = {"attack": "descriptor exhaustion (limit 256, no cap)", "attackers": attackers,
               "healthy_before": before, "healthy_during": during, "healthy_after": after}
    print(json.dumps(figures))
    assert before["failed"] == during["failed"] == after["failed"] == 0, figures
    return figures


def test_the_accept_loop_survives_running_out_of_descriptors(start_process: StartProcess) -> None:
    _exhaust(start_process, 400)


def _cap_run(start_process: StartProcess, attackers: int) -> None:
    child, cs = _child_emulator(start_process, cap=-1)  # -1: the default cap (half of 256 here)
    listener = HybridConnectionListener.from_connection_string(cs, token_ttl=TOKEN_TTL)
    listener.on_request = _echo
    listener.open(timeout=30)
    socks: List[Any] = []
    try:
        address = _address(cs)
        socks = [_attack_socket(address) for _ in range(attackers)]
        connected = sum(sock is not None for sock in socks)  # a burst may overflow the listen backlog
        busy = 0
        for sock in socks:  # the connections over the cap were answered 503 and closed at once
            if sock is not None and select.select([sock], [], [], 0.5)[0]:
                busy += sock.recv(100).startswith(b"HTTP/1.1 503")
        during: Dict[str, int] = {"ok": 0, "failed": 0}
        for _ in range(10):  # new connections from the healthy client, while the attacker holds its cap
            client = HybridConnectionClient.from_connection_string(cs)
            try:
                result = _healthy(client, 2)
            finally:
                client.close()
            during = {k: during[k] + result[k] for k in during}
        status = _child_status(child)
    finally:
        _close_all(socks)
        listener.close()
    refused = int(status.split("refused=", 1)[1])
    figures = {"attack": "one client opens connections (descriptor limit 256, default cap 128)",
               "attackers": attackers, "connected": connected, "answered_503": busy, "refused": refused,
               "healthy_during": during}
    print(json.dumps(figures))
    assert "running=True" in status
    assert during == {"ok": 20, "failed": 0}, figures
    assert refused >= connected - 128 and busy >= connected - 128 - 5, figures


def test_one_client_cannot_take_every_descriptor(start_process: StartProcess) -> None:
    _cap_run(start_process, 300)


# ------------------------------------------------------------------------------------------------
# Slowloris heads and stalled bodies, in this process


def _pair(relay: RelayEmulator) -> Tuple[HybridConnectionListener, HybridConnectionClient]:
    listener = make_listener(relay)
    listener.on_request = _echo
    listener.open(timeout=15)
    assert relay.wait_for_listeners("hc1", 1, timeout=10)
    return listener, make_client(relay)


def _dribble(relay: RelayEmulator, socks: List[Any], first: bytes, byte: bytes, answer: bytes) -> Dict[str, Any]:
    """Send ``first`` on every socket, then ``byte`` every 0.2 s, until each was answered or closed."""
    listener, client = _pair(relay)
    started = time.monotonic()
    live = {sock: b"" for sock in socks}
    healthy = {"ok": 0, "failed": 0}
    answered = closed = 0
    try:
        for sock in socks:
            sock.sendall(first)
        while live and time.monotonic() - started < BOUND:
            for sock in list(live):
                try:
                    sock.send(byte)
                except OSError:
                    pass
            readable = select.select(list(live), [], [], 0.2)[0]
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                live[sock] += data
                if not data:
                    answered += live.pop(sock).startswith(answer)
                    closed += 1
            result = _healthy(client, 1)
            healthy = {k: healthy[k] + result[k] for k in healthy}
    finally:
        client.close()
        listener.close()
    return {"attackers": len(socks), "closed": closed, "answered": answered, "still_open": len(live),
            "healthy_during": healthy}


def _slowloris(relay: RelayEmulator, count: int) -> None:
    address = _address(relay.namespace)
    socks = [_attack_socket(address, 5.0) for _ in range(count)]
    try:
        figures = _dribble(relay, socks, b"GET /hc1 HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a", b"HTTP/1.1 408")
    finally:
        _close_all(socks)
    figures["attack"] = "slowloris request heads (head_timeout 2 s)"
    print(json.dumps(figures))
    assert figures["still_open"] == 0 and figures["answered"] == count, figures
    assert figures["healthy_during"]["failed"] == 0 and figures["healthy_during"]["ok"] > 0, figures


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "limits": ClientLimits(head_timeout=2.0, body_idle_timeout=2.0)}


def test_a_request_head_sent_a_byte_at_a_time_is_cut_off(relay: RelayEmulator) -> None:
    _slowloris(relay, 30)


def _stalled_bodies(relay: RelayEmulator, count: int) -> None:
    address = _address(relay.namespace)
    socks = [_attack_socket(address, 5.0) for _ in range(count)]
    head = b"POST /hc1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 100
    try:
        figures = _dribble(relay, socks, head, b"", b"")  # then silence: nothing more is sent
    finally:
        _close_all(socks)
    figures["attack"] = "1 GB bodies that stall after 100 bytes (body_idle_timeout 2 s)"
    print(json.dumps(figures))
    assert figures["still_open"] == 0 and figures["closed"] == count, figures
    assert figures["healthy_during"]["failed"] == 0 and figures["healthy_during"]["ok"] > 0, figures


def test_a_request_body_that_stalls_is_cut_off(relay: RelayEmulator) -> None:
    _stalled_bodies(relay, 20)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_exhaustion_attacks_stress(start_process: StartProcess, relay: RelayEmulator) -> None:
    _exhaust(start_process, 1500)
    _cap_run(start_process, 1000)
    _slowloris(relay, 200)
    _stalled_bodies(relay, 100)
