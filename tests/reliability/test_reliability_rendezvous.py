"""Rendezvous sockets cut mid-body, both directions, for HTTP and WebSocket.

The listener reaches the relay through :class:`ConnectProxy`, which resets the
listener's rendezvous tunnel after a few hundred kB of a multi-megabyte body.
The handler side must see an error (or never see the truncated request), the
sender must get an error rather than a short body, and the listener must keep
serving with no stuck rendezvous reader.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator, List

import pytest

from hybridconn import ConnectionClosed, HybridConnection, HybridConnectionError, RelayedRequest, RelayedResponse
from hybridconn.emulator import RelayEmulator
from tests.support.endpoints import make_client, make_listener
from tests.support.measure import hybridconn_threads, wait_until
from tests.support.proxy import ConnectProxy, DOWN, UP


BIG = 4 * 1024 * 1024
CUT_AT = 300 * 1024


def _rendezvous_readers() -> List[str]:
    return [n for n in hybridconn_threads() if n.startswith("hybridconn-rendezvous-")]


@pytest.fixture
def setup() -> Iterator[Any]:
    proxy = ConnectProxy()
    with RelayEmulator(response_timeout=15) as relay:
        listener = make_listener(relay, proxy=proxy.url, backoff=(0, 0.2), io_timeout=10)
        client = make_client(relay)
        try:
            yield relay, proxy, listener, client
        finally:
            client.close()
            listener.close(timeout=10)
            proxy.close()


def _still_serving(listener: Any, client: Any, proxy: ConnectProxy) -> None:
    proxy.disarm()
    assert listener.is_online
    response = client.request("POST", "/after", data=b"still here", timeout=(10, 30))
    assert response.status_code == 200 and response.content == b"ok still here"
    big = os.urandom(200_000)  # and a rendezvous request works again
    response = client.request("POST", "/after-big", data=big, timeout=(10, 30))
    assert response.content == b"ok " + big
    assert wait_until(lambda: not _rendezvous_readers() or listener.stats["sockets"] <= 1, 15), _rendezvous_readers()


def test_response_body_cut_listener_to_relay(setup: Any) -> None:
    relay, proxy, listener, client = setup
    outcome: List[str] = []
    generator_closed = threading.Event()

    @listener.on_request
    def handler(req: RelayedRequest) -> RelayedResponse:
        if req.path != "/stream":
            return RelayedResponse(body=b"ok " + req.body)

        def body() -> Iterator[bytes]:
            sent = 0
            try:
                while sent < BIG:
                    yield b"x" * 65536
                    sent += 65536
                outcome.append("completed")
            except GeneratorExit:
                outcome.append(f"GeneratorExit after {sent} bytes")
                raise
            finally:
                generator_closed.set()

        return RelayedResponse(body=body())

    listener.open(timeout=15)
    proxy.cut_after(UP, CUT_AT)
    with pytest.raises(HybridConnectionError) as info:
        response = client.request("GET", "/stream", timeout=(10, 30))
        # a response may start before the cut; it must then fail while reading, never come back short
        raise AssertionError(f"got {len(response.content)} of {BIG} bytes without an error")
    assert proxy.cut_done.wait(10) and proxy.cuts == 1  # the proxy counts just after the cut
    assert generator_closed.wait(15)
    assert outcome and outcome[0].startswith("GeneratorExit"), outcome
    print(f"\n[reliability] response cut: sender got {type(info.value).__name__}; handler body got {outcome[0]}")
    _still_serving(listener, client, proxy)


def test_request_body_cut_relay_to_listener(setup: Any) -> None:
    relay, proxy, listener, client = setup
    seen: List[int] = []

    @listener.on_request
    def handler(req: RelayedRequest) -> RelayedResponse:
        seen.append(len(req.body))
        return RelayedResponse(body=b"ok " + req.body)

    listener.open(timeout=15)
    proxy.cut_after(DOWN, CUT_AT)
    with pytest.raises(HybridConnectionError) as info:
        client.request("POST", "/upload", data=os.urandom(BIG), timeout=(10, 30))
    assert proxy.cut_done.wait(10) and proxy.cuts == 1  # the proxy counts just after the cut
    # the handler never ran with a truncated body (a body is whole or the request never reaches it)
    assert all(size == BIG for size in seen), seen
    print(f"\n[reliability] request cut: sender got {type(info.value).__name__}; handler calls with a short body=0")
    _still_serving(listener, client, proxy)


def test_websocket_message_cut_both_directions(setup: Any) -> None:
    relay, proxy, listener, client = setup
    handler_errors: List[str] = []
    handler_done = threading.Semaphore(0)

    @listener.on_request
    def http(req: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=b"ok " + req.body)

    @listener.on_connection
    def handler(conn: HybridConnection) -> None:
        try:
            for message in conn:
                if message == "send big":
                    conn.send(os.urandom(BIG))
                    conn.recv(timeout=20)  # the cut shows here if the send fit in socket buffers
                else:
                    conn.send(message if isinstance(message, str) else b"got %d" % len(message))
            handler_errors.append(f"iteration ended, close code {conn.close_code}")
        except (ConnectionClosed, HybridConnectionError) as exc:
            handler_errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            handler_done.release()

    listener.open(timeout=15)

    # relay -> listener: the sender's 4 MB message is cut on the way into the listener
    sender = client.connect(timeout=15)
    try:
        proxy.cut_after(DOWN, CUT_AT)
        with pytest.raises(ConnectionClosed) as first:
            sender.send(os.urandom(BIG))
            sender.recv(timeout=20)
    finally:
        sender.abort()
    assert handler_done.acquire(timeout=20)
    assert proxy.cut_done.wait(10) and proxy.cuts == 1, (repr(first.value), handler_errors)
    assert handler_errors[-1].startswith("ConnectionClosed") or "1000" not in handler_errors[-1], handler_errors

    # listener -> relay: the listener's 4 MB message is cut on the way out
    sender = client.connect(timeout=15)
    try:
        proxy.cut_after(UP, CUT_AT)
        sender.send("send big")
        with pytest.raises(ConnectionClosed) as second:
            received = sender.recv(timeout=20)
            raise AssertionError(f"got {len(received)} bytes of a cut message")
    finally:
        sender.abort()
    assert proxy.cut_done.wait(10) and proxy.cuts == 2, (repr(second.value), handler_errors)
    assert handler_done.acquire(timeout=20)
    assert handler_errors[-1].startswith("ConnectionClosed") or "1000" not in handler_errors[-1], handler_errors
    print(f"\n[reliability] websocket cuts: sender got close codes {first.value.code}, {second.value.code}; "
          f"handler got {handler_errors}")

    proxy.disarm()
    with client.connect(timeout=15) as again:
        again.send("hello")
        assert again.recv(timeout=10) == "hello"
    _still_serving(listener, client, proxy)


