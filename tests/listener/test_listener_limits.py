"""Every request gets one response: queued work at close(), statuses a handler may not send,
bad reasons, bodies over max_request_body, idle rendezvous sockets, a large response at close()."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterator, List

import requests

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn.listener import HybridConnectionListener
from tests.support.measure import wait_until
from tests.support.plain_clients import Sender


Make = Callable[..., HybridConnectionListener]


def test_requests_queued_at_close_are_answered_503(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_workers=1, max_pending=4)
    entered = threading.Event()
    release = threading.Event()

    @listener.on_request
    def slow(req: RelayedRequest) -> RelayedResponse:
        if req.path == "/slow":
            entered.set()
            release.wait(20)
        return RelayedResponse(body=b"ran")

    listener.open(timeout=15)
    results: List[Any] = []
    senders = [threading.Thread(target=lambda: results.append(sender.request("GET", "/slow", timeout=25)))]
    senders[0].start()
    try:
        assert entered.wait(15)
        queued: List[Any] = []
        for n in range(2):
            t = threading.Thread(target=lambda n=n: queued.append(sender.request("GET", f"/queued/{n}", timeout=25)))
            t.start()
            senders.append(t)
        assert wait_until(lambda: listener.stats["in_flight"] == 3)
        listener.close(timeout=3)  # /slow is still running at the deadline; the two queued never ran
        for t in senders[1:]:
            t.join(30)
        assert [r.status_code for r in queued] == [503, 503]
        assert all(b"closing" in r.content for r in queued)
    finally:
        release.set()
        senders[0].join(30)


def test_informational_status_from_a_handler_becomes_500(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    listener.on_request = lambda req: RelayedResponse(status=101 if req.path == "/101" else 103)
    listener.open(timeout=15)
    assert sender.request("GET", "/101").status_code == 500
    assert sender.request("GET", "/103").status_code == 500


def test_reason_with_control_or_non_ascii_characters_falls_back_to_the_standard_phrase(make_listener: Make,
                                                                                        sender: Sender) -> None:
    listener = make_listener(open=False)
    reasons = {"/crlf": "OK\r\nX-Injected: yes", "/nul": "bad\x00reason", "/utf8": "Créé", "/fine": "All Good"}
    listener.on_request = lambda req: RelayedResponse(status=201, reason=reasons[req.path], body=b"x")
    listener.open(timeout=15)
    for suffix in ("/crlf", "/nul", "/utf8"):
        r = sender.request("GET", suffix)
        assert r.status_code == 201
        assert r.reason == "Created"
        assert "X-Injected" not in r.headers
    assert sender.request("GET", "/fine").reason == "All Good"


def test_body_over_max_request_body_is_413_on_either_path(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, max_request_body=1000)
    seen: List[int] = []

    @listener.on_request
    def handler(req: RelayedRequest) -> RelayedResponse:
        seen.append(len(req.body))
        return RelayedResponse(body=b"took %d" % len(req.body))

    listener.open(timeout=15)
    assert sender.request("POST", "/small", data=b"x" * 1000).content == b"took 1000"
    assert sender.request("POST", "/control", data=b"x" * 1001).status_code == 413  # control channel
    with requests.Session() as session:
        big = sender.request("POST", "/big", session=session, data=os.urandom(200_000))  # by rendezvous
        assert big.status_code == 413
        # the rendezvous socket stays usable for the sender's next request
        assert sender.request("POST", "/after", session=session, data=b"y" * 10).content == b"took 10"
    assert seen == [1000, 10]


def test_idle_rendezvous_socket_is_closed_after_the_idle_timeout(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, rendezvous_idle_timeout=0.5)
    listener.on_request = lambda req: RelayedResponse(body=req.body)
    listener.open(timeout=15)
    with requests.Session() as session:
        body = os.urandom(100_000)
        assert sender.request("POST", "/big", session=session, data=body).content == body
        assert wait_until(lambda: listener.stats["sockets"] == 0), "the idle rendezvous socket was kept"
    assert sender.request("POST", "/again", data=body).content == body


def test_handler_slower_than_the_idle_timeout_keeps_its_socket(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, rendezvous_idle_timeout=0.3)
    gate = threading.Event()

    @listener.on_request
    def slow(req: RelayedRequest) -> RelayedResponse:
        gate.wait(1.5)  # several idle timeouts with a response pending: not idle
        return RelayedResponse(body=req.body)

    listener.open(timeout=15)
    body = os.urandom(100_000)
    r = sender.request("POST", "/slow", data=body)
    assert r.status_code == 200 and r.content == body


def test_close_ends_a_large_response_in_progress(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    started = threading.Event()
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"a" * 1000
        started.set()
        release.wait(30)
        yield b"b" * 1000

    listener.on_request = lambda req: RelayedResponse(body=body())
    listener.open(timeout=15)
    ended = threading.Event()
    got: List[bytes] = []

    def read() -> None:
        try:
            with requests.Session() as session:
                r = sender.request("GET", "/stream", session=session, stream=True)
                for chunk in r.iter_content(100):
                    got.append(chunk)
        except requests.RequestException:
            pass
        finally:
            ended.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert started.wait(15)
        listener.close(timeout=2)
        # close() closed the response's rendezvous socket although the handler's body is still blocked
        assert ended.wait(15), "the response's rendezvous socket outlived close()"
    finally:
        release.set()
        reader.join(30)
    assert b"b" not in b"".join(got)
