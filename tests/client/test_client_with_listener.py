"""The sender against hybridconn's own listener: the DESIGN.md example, end to end."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

import hybridconn
from hybridconn.emulator import RelayEmulator


@pytest.fixture
def relay_and_listener() -> Iterator[RelayEmulator]:
    with RelayEmulator(hybrid_connections=["hc1"]) as relay:
        listener = hybridconn.HybridConnectionListener.from_connection_string(
            relay.connection_string("hc1"), max_workers=4
        )

        @listener.on_request
        def handle(req: hybridconn.RelayedRequest) -> hybridconn.RelayedResponse:
            return hybridconn.RelayedResponse(status=201, headers={"X-Path": req.path}, body=b"hello " + req.body)

        @listener.on_connection
        def echo(conn: hybridconn.HybridConnection) -> None:
            for message in conn:
                conn.send(message)

        listener.open(timeout=10)
        try:
            yield relay
        finally:
            listener.close(timeout=10)


def test_http_and_websocket_through_our_listener(relay_and_listener: RelayEmulator) -> None:
    payload = os.urandom(300_000)  # over 64 kB: rendezvous both ways
    with hybridconn.HybridConnectionClient.from_connection_string(
        relay_and_listener.connection_string("hc1")
    ) as client:
        small = client.request("POST", "/any/suffix?x=1", data=b"world", timeout=30)
        assert (small.status_code, small.content, small.headers["X-Path"]) == (201, b"hello world", "/any/suffix")
        large = client.request("POST", "/big", data=payload, timeout=30)
        assert large.content == b"hello " + payload
        with client.connect(subprotocols=["p1"], timeout=10) as conn:
            conn.send("ping")
            assert conn.recv(timeout=10) == "ping"
            conn.send(payload)
            assert conn.recv(timeout=10) == payload


def _listener_with(relay: RelayEmulator, handler):  # type: ignore[no-untyped-def]
    listener = hybridconn.HybridConnectionListener.from_connection_string(relay.connection_string("hc1"))
    listener.on_connection(handler)
    listener.open(timeout=10)
    return listener


def test_a_listener_socket_lost_without_a_close_is_a_transport_error_for_the_sender() -> None:
    with RelayEmulator(hybrid_connections=["hc1"]) as relay:
        listener = _listener_with(relay, lambda conn: (conn.recv(timeout=10), conn.abort()))
        try:
            with hybridconn.HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as client:
                with client.connect(timeout=10) as conn:
                    conn.send("go")
                    with pytest.raises(hybridconn.ConnectionClosed) as caught:
                        conn.recv(timeout=10)
                    assert caught.value.code == 1006 and not caught.value.clean  # not a relayed 1001
        finally:
            listener.close(timeout=10)


def test_half_close_data_sent_after_the_senders_close_still_arrives() -> None:
    def answer_after_close(conn: hybridconn.HybridConnection) -> None:
        conn.defer_close_answer = True
        received = [m for m in conn]  # until the sender's close
        conn.send(b"".join(received))  # sent after that close: must still reach the sender
        conn.close(4000, "bye")

    with RelayEmulator(hybrid_connections=["hc1"]) as relay:
        listener = _listener_with(relay, answer_after_close)
        try:
            with hybridconn.HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as client:
                with client.connect(timeout=10) as conn:
                    payload = os.urandom(200_000)
                    conn.send(payload)
                    conn.shutdown_send(1000, "done sending")
                    assert conn.recv(timeout=10) == payload
                    with pytest.raises(hybridconn.ConnectionClosed):
                        conn.recv(timeout=10)
                    assert conn.closed and conn.close_code == 1000
        finally:
            listener.close(timeout=10)
