"""Relay faults while a listener runs: refusals with 404/401, fixed tokens expiring, overload."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, List

import pytest
import websocket

from hybridconn import AuthenticationError, EndpointNotFoundError, HybridConnection, RelayedRequest, RelayedResponse
from hybridconn.auth import ConnectionString, StaticTokenProvider, generate_sas_token
from hybridconn.addresses import token_audience
from hybridconn.listener import HybridConnectionListener
from tests.support.endpoints import StatusLog, ok
from tests.support.plain_clients import Sender


Make = Callable[..., HybridConnectionListener]


def test_404_while_running_stops_the_listener(relay: Any, make_listener: Make) -> None:
    listener = make_listener(open=False, backoff=(0, 0.2))
    events = StatusLog(listener)
    listener.open(timeout=15)
    relay.refuse_listeners("hc1", 30, status=404)
    relay.drop_control_channels("hc1")
    with pytest.raises(EndpointNotFoundError):
        listener.serve_forever()  # returns once stopped, raising the terminal error
    assert listener.state == "closed"
    assert isinstance(listener.last_error, EndpointNotFoundError)
    # one online -> offline transition, one on_offline: the 404 while reconnecting is not a second one
    assert len(events.offline_errors) == 1
    assert not isinstance(events.offline_errors[0], EndpointNotFoundError)


def test_401_while_running_is_retried_and_reported(relay: Any, make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, backoff=(0, 0.2))
    listener.on_request = ok
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    relay.refuse_listeners("hc1", 1.0, status=401)
    relay.drop_control_channels("hc1")
    assert events.online.acquire(timeout=20)
    assert isinstance(listener.last_error, AuthenticationError)  # the last failed attempt, kept after recovery
    assert events.connecting >= 3
    assert sender.request("GET", "/").status_code == 200


def test_each_control_channel_has_a_fresh_tracking_id(relay: Any, make_listener: Make) -> None:
    listener = make_listener(open=False, backoff=(0,))
    events = StatusLog(listener)
    listener.open(timeout=15)
    assert events.online.acquire(timeout=5)
    first = relay.listener_ids("hc1")
    relay.drop_control_channels("hc1")
    assert events.online.acquire(timeout=15)
    assert relay.wait_for_listeners("hc1", 1, timeout=10)
    second = relay.listener_ids("hc1")
    assert len(first) == 1 and len(second) == 1 and first != second


def test_token_in_query_works(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, token_in_query=True)
    listener.on_request = ok
    listener.open(timeout=15)
    assert sender.request("GET", "/").content == b"ok:"


def test_fixed_token_expiry_warns_then_reports_1008(relay: Any, caplog: pytest.LogCaptureFixture) -> None:
    cs = ConnectionString.parse(relay.connection_string("hc1"))
    token = generate_sas_token(token_audience(cs.namespace, "hc1"), cs.shared_access_key_name or "",
                               cs.shared_access_key or "", ttl=3)
    listener = HybridConnectionListener(cs.namespace, "hc1", StaticTokenProvider(token), backoff=(0.2,))
    events = StatusLog(listener)
    with caplog.at_level(logging.WARNING, logger="hybridconn"):
        listener.open(timeout=10)
        try:
            assert events.offline.wait(15)
            assert isinstance(events.offline_errors[0], AuthenticationError)
            assert "1008" in str(events.offline_errors[0])
        finally:
            listener.close(timeout=5)
    assert any("cannot be renewed" in r.getMessage() for r in caplog.records)
    assert not any("sig=" in r.getMessage() for r in caplog.records)


def test_no_room_for_a_rendezvous_request_answers_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_rendezvous=0)
    listener.on_request = lambda req: RelayedResponse(body=req.body)
    listener.open(timeout=15)
    r = sender.request("POST", "/big", data=os.urandom(70_000))
    assert r.status_code == 503
    # small ones still travel on the control channel
    assert sender.request("POST", "/small", data=b"x").content == b"x"


def test_full_pool_rejects_websockets_with_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_workers=1, max_pending=0)
    holding = threading.Event()

    @listener.on_connection
    def hold(conn: HybridConnection) -> None:
        holding.set()
        for message in conn:
            conn.send(message)

    listener.open(timeout=15)
    first = sender.connect()
    assert holding.wait(15)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect()
    assert info.value.status_code == 503
    first.send("still here")
    assert first.recv() == "still here"
    first.close()


def test_full_accept_queue_rejects_with_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(max_pending=1)
    first = sender.connect()
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        sender.connect()
    assert info.value.status_code == 503
    conn = listener.accept_connection(timeout=10)
    assert conn is not None
    with conn:
        first.send("hello")
        assert conn.recv(timeout=10) == "hello"
    first.shutdown()


def test_rejected_work_during_close_gets_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    entered = threading.Event()
    release = threading.Event()
    results: List[Any] = []

    @listener.on_request
    def slow(req: RelayedRequest) -> RelayedResponse:
        if req.path == "/first":
            entered.set()
            release.wait(20)
        return RelayedResponse(body=b"done")

    listener.open(timeout=15)
    client = threading.Thread(target=lambda: results.append(sender.request("GET", "/first")))
    client.start()
    assert entered.wait(15)
    closer = threading.Thread(target=listener.close, kwargs={"timeout": 20})
    closer.start()
    assert listener._stopping.wait(10)  # close() has begun (it waits for /first)
    r = sender.request("GET", "/second")  # arrives while closing: refused at once
    release.set()
    closer.join(30)
    client.join(30)
    assert r.status_code == 503
    assert results[0].status_code == 200 and results[0].content == b"done"
