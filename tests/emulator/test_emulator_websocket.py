"""Listen, connect, accept, reject and the relayed WebSocket, driven with plain websocket-client."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from typing import Any, Dict
from urllib.parse import parse_qsl, urlsplit

import pytest
import websocket

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, refused, shut, status_message, token


@pytest.fixture(params=["threads", "poll"])
def relay_emulator_options(request: pytest.FixtureRequest) -> Dict[str, Any]:
    """Every test here runs on both ways of pumping a relayed WebSocket's frames (``ws_relay``)."""
    return {"hybrid_connections": ["hc1"], "response_timeout": 10.0, "accept_timeout": 10.0,
            "ws_relay": request.param}


def _connect(relay: RelayEmulator, suffix: str = "", query: str = "", **options: object) -> BackgroundCall:
    url = hc_url(relay, "hc1" + suffix, "connect", query)
    return BackgroundCall(open_ws, url, [f"ServiceBusAuthorization: {token(relay)}", "X-App: yes"], **options)


def _pair(relay: RelayEmulator, control: Control, **options: object):  # type: ignore[no-untyped-def]
    sender_call = _connect(relay, **options)
    accept = control.recv_json()["accept"]
    listener = open_ws(accept["address"])
    return sender_call.join(), listener, accept


def test_connect_without_listener_is_404_with_tracking_id(relay: RelayEmulator) -> None:
    exc = refused(hc_url(relay, "hc1", "connect"), [f"ServiceBusAuthorization: {token(relay)}"])
    assert exc.status_code == 404
    assert "no listeners" in status_message(exc) and "TrackingId:" in status_message(exc)


def test_accept_relays_frames_both_ways(relay: RelayEmulator, control: Control) -> None:
    sender, listener, _ = _pair(relay, control)
    try:
        sender.send("hello")
        assert listener.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"hello")
        sender.send_binary(b"\x00\xff" * 10)
        assert listener.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"\x00\xff" * 10)
        listener.send("back")
        listener.send_binary(b"bin")
        assert sender.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"back")
        assert sender.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"bin")
        # a fragmented message stays one message; a big one survives intact
        sender.send_frame(websocket.ABNF.create_frame("part1-", websocket.ABNF.OPCODE_TEXT, fin=0))
        sender.send_frame(websocket.ABNF.create_frame("part2", websocket.ABNF.OPCODE_CONT, fin=1))
        assert listener.recv_data() == (websocket.ABNF.OPCODE_TEXT, b"part1-part2")
        big = bytes(range(256)) * 4096
        listener.send_binary(big)
        assert sender.recv_data() == (websocket.ABNF.OPCODE_BINARY, big)
        # pings are answered per hop
        sender.ping(b"p1")
        assert sender.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b"p1")
        listener.ping(b"p2")
        assert listener.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b"p2")
    finally:
        shut(sender)
        shut(listener)


@pytest.mark.parametrize("closer", ["sender", "listener"])
def test_close_is_relayed_end_to_end_and_data_after_it_arrives(
    relay: RelayEmulator, control: Control, closer: str
) -> None:
    """The relay does not answer a close itself: the other peer gets it, may still send, and its answer returns."""
    sender, listener, _ = _pair(relay, control)
    try:
        first, other = (sender, listener) if closer == "sender" else (listener, sender)
        first.send_close(4001, b"app done")
        frame = other.recv_frame()  # recv_frame: websocket-client does not answer the close by itself
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        assert frame.data[:2] == (4001).to_bytes(2, "big") and frame.data[2:] == b"app done"
        big = bytes(range(256)) * 1024
        other.send_binary(b"sent after the close")
        other.send_binary(big)
        other.send_close(4002, b"the answer")
        got = [first.recv_frame()]
        while got[-1].opcode != websocket.ABNF.OPCODE_CLOSE:
            got.append(first.recv_frame())  # a long message is relayed in pieces as it arrives
        assert b"".join(f.data for f in got[:-1]) == b"sent after the close" + big
        assert got[-1].data[:2] == (4002).to_bytes(2, "big") and got[-1].data[2:] == b"the answer"
        first.sock.settimeout(10)
        assert first.sock.recv(10) == b""  # handshake complete: the relay closes the TCP connection
    finally:
        shut(sender)
        shut(listener)


@pytest.mark.parametrize("dying", ["sender", "listener"])
def test_a_socket_lost_without_a_close_is_a_transport_error_for_the_other(
    relay: RelayEmulator, control: Control, dying: str
) -> None:
    sender, listener, _ = _pair(relay, control)
    try:
        gone, other = (sender, listener) if dying == "sender" else (listener, sender)
        gone.sock.shutdown(socket.SHUT_RDWR)  # no close frame
        other.sock.settimeout(10)
        assert other.sock.recv(10) == b""  # dropped too: no clean close frame first
    finally:
        shut(sender)
        shut(listener)


def test_accept_message_carries_headers_address_and_id(relay: RelayEmulator, control: Control) -> None:
    sender_call = BackgroundCall(
        open_ws,
        hc_url(relay, "hc1/room/7", "connect", "x=1&sb-hc-id=my-id"),
        [f"ServiceBusAuthorization: {token(relay)}", "X-App: yes", "Sec-WebSocket-Extensions: permessage-deflate"],
        subprotocols=["chat.v2", "chat.v1"],
    )
    accept = control.recv_json()["accept"]
    headers = {k.lower(): v for k, v in accept["connectHeaders"].items()}
    assert accept["id"] == "my-id_G0_G1"  # the sender's tracking id with Azure's role suffixes
    assert headers["x-app"] == "yes" and "sec-websocket-key" in headers
    assert headers["sec-websocket-protocol"] == "chat.v2,chat.v1"
    assert "sec-websocket-extensions" not in headers and "servicebusauthorization" not in headers
    parts = urlsplit(accept["address"])
    assert parts.path == "/$hc/hc1/room/7"
    query = dict(parse_qsl(parts.query))
    assert query["x"] == "1" and query["sb-hc-action"] == "accept" and query["sb-hc-id"].startswith("my-id_G0_G1_")
    assert len(query["sb-hc-id"]) == len("my-id_G0_G1_") + 32  # and a secret the message's id does not carry
    listener = open_ws(accept["address"], subprotocols=["chat.v1"])
    sender = sender_call.join()
    try:
        assert sender.subprotocol == "chat.v1"  # the listener's choice reaches the sender
    finally:
        shut(sender)
        shut(listener)


def test_accept_address_is_single_use(relay: RelayEmulator, control: Control) -> None:
    sender, listener, accept = _pair(relay, control)
    try:
        assert refused(accept["address"]).status_code == 403
    finally:
        shut(sender)
        shut(listener)


@pytest.mark.parametrize("prefix", ["sb-hc-", ""])
def test_reject_fails_the_sender_with_the_listeners_status(relay: RelayEmulator, control: Control, prefix: str) -> None:
    sender_call = _connect(relay)
    accept = control.recv_json()["accept"]
    exc = refused(f"{accept['address']}&{prefix}statusCode=418&{prefix}statusDescription=No%20teapots%20here")
    assert exc.status_code == 410
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender_call.join()
    assert info.value.status_code == 418
    assert status_message(info.value) == "No teapots here"


def test_sender_fails_when_no_listener_answers_in_the_window() -> None:
    with RelayEmulator(accept_timeout=1.0) as relay:
        channel = Control(relay)
        try:
            sender_call = _connect(relay)
            accept = channel.recv_json()["accept"]
            with pytest.raises(websocket.WebSocketBadStatusException) as info:
                sender_call.join()
            assert info.value.status_code == 504
            assert refused(accept["address"]).status_code == 403  # the address expired with the window
        finally:
            channel.close()


def test_listener_limit_is_25(relay: RelayEmulator) -> None:
    channels = []
    try:
        for _ in range(25):
            channels.append(Control(relay))
        assert relay.listener_count("hc1") == 25
        exc = refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {token(relay)}"])
        assert exc.status_code == 403 and "TrackingId:" in status_message(exc)
    finally:
        for channel in channels:
            channel.close()


def test_connections_are_spread_over_listeners(relay: RelayEmulator) -> None:
    channels = [Control(relay, query=f"sb-hc-id=L{i}") for i in range(2)]
    try:
        assert sorted(relay.listener_ids("hc1")) == ["L0", "L1"]
        seen: Counter = Counter()
        lock = threading.Lock()

        def serve(channel: Control, name: str) -> None:
            while True:
                try:
                    channel.ws.settimeout(3)
                    accept = channel.recv_json(timeout=3)["accept"]
                except (websocket.WebSocketException, OSError, AssertionError):  # closed by the test
                    return
                with lock:
                    seen[name] += 1
                shut(open_ws(accept["address"]))

        servers = [threading.Thread(target=serve, args=(c, f"L{i}"), name="test-serve") for i, c in enumerate(channels)]
        for server in servers:
            server.start()
        for _ in range(16):
            shut(_connect(relay).join())
        for channel in channels:
            channel.close()
        for server in servers:
            server.join(10)
        assert sum(seen.values()) == 16 and len(seen) == 2  # both got some (chance of not: 2 * 2**-16)
    finally:
        for channel in channels:
            channel.close()


def test_listener_id_comes_from_sb_hc_id(relay: RelayEmulator) -> None:
    channel = Control(relay, query="sb-hc-id=my-listener")
    try:
        assert relay.listener_ids("hc1") == ["my-listener"]
    finally:
        channel.close()
