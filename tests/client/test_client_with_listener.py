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
