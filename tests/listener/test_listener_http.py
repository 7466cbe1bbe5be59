"""HTTP through the emulator to a listener: methods, bodies at the 64 kB edge, big and streamed bodies,
concurrency, failures, and keep-alive senders on one rendezvous socket."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, List

import pytest
import requests

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn.listener import HybridConnectionListener
from tests.support.plain_clients import Sender


Make = Callable[..., HybridConnectionListener]


def echo(req: RelayedRequest) -> RelayedResponse:
    return RelayedResponse(
        status=200,
        headers={
            "Content-Type": "application/octet-stream",
            "X-Method": req.method,
            "X-Path": req.path,
            "X-Query": req.query,
            "X-Target": req.target,
            "X-Custom-Echo": req.headers.get("x-custom", ""),
            "X-Via-Rendezvous": str(req.via_rendezvous),
            "X-Length": str(len(req.body)),
        },
        body=req.body,
    )


@pytest.fixture
def echo_listener(make_listener: Make) -> HybridConnectionListener:
    listener = make_listener(open=False)
    listener.on_request = echo
    listener.open(timeout=15)
    return listener


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("body", [b"", b"hello relay"])
def test_methods_with_and_without_bodies(echo_listener: HybridConnectionListener, sender: Sender, method: str,
                                         body: bytes) -> None:
    if method == "GET" and body:
        body = b"a GET with a body"
    r = sender.request(method, "/a/b?x=1&y=two", data=body, headers={"X-Custom": "yes"})
    assert r.status_code == 200, r.text
    assert r.content == body
    assert r.headers["X-Method"] == method
    assert r.headers["X-Path"] == "/a/b"
    assert r.headers["X-Query"] == "x=1&y=two"
    assert r.headers["X-Custom-Echo"] == "yes"
    assert "/a/b?x=1&y=two" in r.headers["X-Target"]


def test_no_suffix_gives_empty_path(echo_listener: HybridConnectionListener, sender: Sender) -> None:
    r = sender.request("GET", "")
    assert r.status_code == 200
    assert r.headers["X-Path"] == ""
    assert r.headers["X-Query"] == ""


def test_body_of_exactly_64k_on_the_control_channel(echo_listener: HybridConnectionListener, sender: Sender) -> None:
    body = os.urandom(65_536)
    r = sender.request("POST", "/edge", data=body)
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["X-Via-Rendezvous"] == "False"
    assert echo_listener.stats["rendezvous_opened"] == 0


def test_body_of_64k_plus_one_goes_by_rendezvous(echo_listener: HybridConnectionListener, sender: Sender) -> None:
    body = os.urandom(65_537)
    r = sender.request("POST", "/edge", data=body)
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["X-Via-Rendezvous"] == "True"


def test_response_of_64k_plus_one_is_upgraded(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_request = lambda req: RelayedResponse(body=b"z" * 65_537)
    listener.open(timeout=15)
    r = sender.request("GET", "/big")
    assert r.status_code == 200
    assert r.content == b"z" * 65_537
    assert listener.stats["rendezvous_opened"] == 1


def test_one_megabyte_request_and_five_megabyte_response(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    big_response = os.urandom(5 * 1024 * 1024)

    @listener.on_request
    def digest(req: RelayedRequest) -> RelayedResponse:
        if req.method == "POST":
            return RelayedResponse(
                body=hashlib.sha256(req.body).hexdigest().encode() + b"/" + str(len(req.body)).encode()
            )
        return RelayedResponse(body=big_response)

    listener.open(timeout=15)
    request_body = os.urandom(1024 * 1024)
    r = sender.request("POST", "/upload", data=request_body)
    assert r.status_code == 200
    assert r.content == hashlib.sha256(request_body).hexdigest().encode() + b"/1048576"
    r = sender.request("GET", "/download")
    assert r.status_code == 200
    assert len(r.content) == len(big_response)
    assert r.content == big_response


def test_streamed_response(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    chunks = [bytes([n]) * (1000 + n) for n in range(50)]

    @listener.on_request
    def stream(req: RelayedRequest) -> RelayedResponse:
        def body() -> Iterator[bytes]:
            yield from chunks

        return RelayedResponse(headers={"Content-Type": "application/octet-stream"}, body=body())

    listener.open(timeout=15)
    r = sender.request("GET", "/stream")
    assert r.status_code == 200
    assert r.content == b"".join(chunks)


def test_streamed_response_failing_before_its_first_chunk_is_500(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)

    def broken() -> Iterator[bytes]:
        raise RuntimeError("no data")
        yield b""  # pragma: no cover

    listener.on_request = lambda req: RelayedResponse(body=broken())
    listener.open(timeout=15)
    r = sender.request("GET", "/stream")
    assert r.status_code == 500
    assert "no data" not in r.text


def test_hundred_concurrent_requests_get_their_own_bodies(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_workers=16)
    listener.on_request = echo
    listener.open(timeout=15)

    def one(n: int) -> bool:
        body = f"request number {n} ".encode() * (n + 1)
        r = sender.request("POST", f"/n/{n}", data=body)
        return r.status_code == 200 and r.content == body and r.headers["X-Path"] == f"/n/{n}"

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(one, range(100)))
    assert all(results), results.count(False)


def test_handler_exception_is_500_with_tracking_id(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)

    def crash(req: RelayedRequest) -> RelayedResponse:
        raise KeyError("internal-detail")

    listener.on_request = crash
    listener.open(timeout=15)
    r = sender.request("GET", "/crash")
    assert r.status_code == 500
    assert "TrackingId:" in r.text
    assert "internal-detail" not in r.text
    # the pool survived: a second request is answered too
    assert sender.request("GET", "/crash").status_code == 500


def test_no_handler_is_501(make_listener: Make, sender: Sender) -> None:
    make_listener()
    assert sender.request("GET", "/").status_code == 501


def test_keep_alive_sender_is_served_over_one_rendezvous_socket(echo_listener: HybridConnectionListener,
                                                                sender: Sender) -> None:
    bodies = [os.urandom(70_000 + n) for n in range(5)]
    with requests.Session() as session:
        for body in bodies:
            r = sender.request("POST", "/keep", session=session, data=body)
            assert r.status_code == 200
            assert r.content == body
            assert r.headers["X-Via-Rendezvous"] == "True"
        # small requests from the same sender follow the same socket
        r = sender.request("POST", "/keep", session=session, data=b"small")
        assert r.content == b"small"
    assert echo_listener.stats["rendezvous_opened"] == 1


def test_full_pool_answers_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_workers=1, max_pending=0)
    release = threading.Event()
    entered = threading.Event()

    @listener.on_request
    def slow(req: RelayedRequest) -> RelayedResponse:
        entered.set()
        release.wait(20)
        return RelayedResponse(body=b"slow")

    listener.open(timeout=15)
    results: List[Any] = []
    first = threading.Thread(target=lambda: results.append(sender.request("GET", "/slow")))
    first.start()
    try:
        assert entered.wait(15)
        r = sender.request("GET", "/second")
        assert r.status_code == 503
    finally:
        release.set()
        first.join(30)
    assert results and results[0].status_code == 200 and results[0].content == b"slow"
    assert listener.stats["busy"] >= 1


def test_response_headers_reach_the_sender_and_connection_headers_are_dropped(make_listener: Make,
                                                                              sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_request = lambda req: RelayedResponse(
        status=201, reason="Made It", headers={"X-One": "1", "Connection": "close", "Content-Type": "text/plain"},
        body="créé")
    listener.open(timeout=15)
    r = sender.request("PUT", "/thing")
    assert r.status_code == 201
    assert r.headers["X-One"] == "1"
    assert r.content == "créé".encode()
