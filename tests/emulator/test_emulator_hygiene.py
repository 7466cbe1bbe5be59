"""Hygiene: bad HTTP, oversized headers, broken frames, invalid UTF-8; nobody else is disturbed."""

from __future__ import annotations

import os
import socket

import pytest
import requests
import websocket

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, shut, token


def _raw(relay: RelayEmulator, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_bad_http_is_400(relay: RelayEmulator) -> None:
    assert _raw(relay, b"THIS IS NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(relay, b"GET /hc1 HTTP/1.1\r\nBad Header\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_header_section_over_32kb_is_431(relay: RelayEmulator) -> None:
    big = b"X-Big: " + b"a" * 33000 + b"\r\n"
    assert _raw(relay, b"GET /hc1 HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n").startswith(b"HTTP/1.1 431 ")


def test_connect_method_and_plain_http_to_hc_are_refused(relay: RelayEmulator) -> None:
    assert _raw(relay, b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    response = requests.get(f"{relay.http_base}/$hc/hc1?sb-hc-action=listen", timeout=10)
    assert response.status_code == 400


def _frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    key = os.urandom(4)
    assert len(payload) < 126
    head += bytes([(0x80 if mask else 0) | len(payload)])
    if not mask:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    "bad, code",
    [
        (_frame(0x1, "é".encode()[:1] + b"x"), 1007),  # invalid UTF-8 in a text frame
        (_frame(0x2, b"unmasked", mask=False), 1002),  # clients must mask
        (_frame(0x3, b"reserved opcode"), 1002),
    ],
    ids=["invalid-utf8", "unmasked", "reserved-opcode"],  # the masks are random: ids must not show them
)
def test_broken_frames_close_the_control_channel(relay: RelayEmulator, bad: bytes, code: int) -> None:
    healthy = Control(relay, query="sb-hc-id=healthy")
    broken = Control(relay, query="sb-hc-id=broken")
    try:
        broken.ws.sock.sendall(bad)
        opcode, payload = broken.recv_frame(timeout=10)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(payload[:2], "big") == code
        assert relay.wait_for_listeners("hc1", 1) and _wait_ids(relay, ["healthy"])
        # the healthy listener still serves
        call = BackgroundCall(
            requests.get, f"{relay.http_base}/hc1", headers={"ServiceBusAuthorization": token(relay)}, timeout=10
        )
        request, _ = healthy.recv_request()
        healthy.respond(request["id"], 200, body=b"fine")
        assert call.join().content == b"fine"
    finally:
        broken.close()
        healthy.close()


def _wait_ids(relay: RelayEmulator, expected: list) -> bool:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if relay.listener_ids("hc1") == expected:
            return True
        relay.wait_for_listeners("hc1", len(expected) + 1, timeout=0.1)
    return False


def test_sender_breaking_the_protocol_is_closed_and_the_listener_told(relay: RelayEmulator, control: Control) -> None:
    call = BackgroundCall(open_ws, hc_url(relay, "hc1", "connect"), [f"ServiceBusAuthorization: {token(relay)}"])
    accept = control.recv_json()["accept"]
    listener = open_ws(accept["address"])
    sender = call.join()
    try:
        sender.sock.sendall(_frame(0x1, b"\xff\xfe"))
        opcode, payload = sender.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(payload[:2], "big") == 1007
        opcode, payload = listener.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(payload[:2], "big") == 1001
    finally:
        shut(sender)
        shut(listener)


def test_a_rendezvous_link_never_outlives_its_sender_connection() -> None:
    """A link attached while the sender is connected is closed when it leaves; after that none attaches.

    A listener may connect a request's rendezvous just as the sender's connection ends (the request
    failed otherwise, say with 502 because the control channel dropped): that link must not be left
    open with nobody to close it.
    """
    from hybridconn.emulator.access import KeyRing
    from hybridconn.emulator.context import EmulatorContext
    from hybridconn.emulator.exchange import RendezvousLink
    from hybridconn.emulator.http_conn import HttpConnection
    from hybridconn.emulator.registry import Registry
    from hybridconn.emulator.routes import route
    from hybridconn.emulator.ws import WsChannel

    ctx = EmulatorContext(
        Registry(), KeyRing(), secure=False, authority="127.0.0.1:1", response_timeout=1, accept_timeout=1
    )
    sender_side, emulator_side = socket.socketpair()
    listener_side, link_side = socket.socketpair()
    conn = HttpConnection(ctx, emulator_side, ("127.0.0.1", 1), None, 1, route)
    try:
        conn.start()
        link = RendezvousLink(WsChannel(link_side), conn, "ws://x/$hc/hc1?sb-hc-action=request")
        assert conn.attach_link(link) and conn.link is link
        sender_side.close()  # the sender leaves: its connection ends and closes the link
        conn.thread.join(10)
        assert not conn.thread.is_alive()
        assert not link.alive
        listener_side.settimeout(10)
        assert listener_side.recv(2)[0] == 0x88  # a close frame went to the listener
        late = RendezvousLink(WsChannel(socket.socket()), conn, "ws://x/$hc/hc1?sb-hc-action=request")
        assert not conn.attach_link(late) and conn.link is link
        late.ws.sock.close()
    finally:
        for sock in (sender_side, listener_side, link_side):
            sock.close()
