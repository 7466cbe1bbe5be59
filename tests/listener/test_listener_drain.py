"""drain(): leave the relay first, finish what is in flight (answered over rendezvous), 503 what is left."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List

import requests

from hybridconn.listener import HybridConnectionListener
from hybridconn.relayed import RelayedRequest, RelayedResponse, ResponseRecord
from tests.support.plain_clients import Sender

MakeListener = Callable[..., HybridConnectionListener]


def _named(name: str) -> Callable[[RelayedRequest], RelayedResponse]:
    def handler(request: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=name.encode())

    return handler


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_request_in_flight_is_answered_and_new_work_goes_to_the_other_listener(
    relay: Any, make_listener: MakeListener, sender: Sender
) -> None:
    started, release = threading.Event(), threading.Event()
    records: List[ResponseRecord] = []
    draining = make_listener()

    @draining.on_request
    def slow(request: RelayedRequest) -> RelayedResponse:
        if request.path == "/slow":
            started.set()
            release.wait(30)
        return RelayedResponse(body=b"draining")

    draining.on_response = records.append
    other = make_listener()
    other.on_request = _named("other")
    assert relay.wait_for_listeners("hc1", 2, timeout=10)
    with ThreadPoolExecutor(2) as pool:
        # The relay picks a listener at random: retry until the slow request lands on ours.
        slow_answer = None
        for _ in range(50):
            future = pool.submit(sender.request, "GET", "/slow")
            if started.wait(0.5):
                slow_answer = future
                break
            assert future.result(timeout=30).content == b"other"
        assert slow_answer is not None, "the relay never picked the draining listener"
        drained = pool.submit(draining.drain, 20.0)
        assert _wait_for(lambda: relay.listener_count("hc1") == 1)
        # The draining listener has left the relay: every new request goes to the other one.
        for _ in range(10):
            assert sender.request("GET", "/next").content == b"other"
        release.set()
        response = slow_answer.result(timeout=30)
        assert (response.status_code, response.content) == (200, b"draining")
        assert drained.result(timeout=30) is True
    assert draining.state == "closed"
    slow_records = [r for r in records if r.target.endswith("/slow")]
    assert len(slow_records) == 1
    assert slow_records[0].status == 200 and slow_records[0].delivered
    assert slow_records[0].via_rendezvous  # moved off the control channel before it closed


def test_a_handler_still_running_at_the_deadline_is_answered_503(
    relay: Any, make_listener: MakeListener, sender: Sender
) -> None:
    started, release = threading.Event(), threading.Event()
    listener = make_listener()

    @listener.on_request
    def hung(request: RelayedRequest) -> RelayedResponse:
        started.set()
        release.wait(30)
        return RelayedResponse(body=b"too late")

    with requests.Session() as session, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(sender.request, "GET", "/hung", session=session)
        assert started.wait(15)
        begun = time.monotonic()
        assert listener.drain(2.0) is False
        assert time.monotonic() - begun < 2.0 + 1.5
        response = answer.result(timeout=30)
        release.set()
    assert response.status_code == 503
    assert "closing" in response.text


def test_drain_on_a_listener_never_opened_just_closes(make_listener: MakeListener) -> None:
    listener = make_listener(open=False)
    assert listener.drain(1.0) is True
    assert listener.state == "closed"


def test_records_carry_status_bytes_and_the_listeners_own_answers(
    relay: Any, make_listener: MakeListener, sender: Sender
) -> None:
    records: List[ResponseRecord] = []
    done = threading.Event()
    listener = make_listener(max_request_body=10)
    listener.on_request = lambda request: RelayedResponse(status=201, body=b"x" * 100_000)

    def record(item: ResponseRecord) -> None:
        records.append(item)
        if len(records) == 2:
            done.set()

    listener.on_response = record
    big = sender.request("POST", "/big?q=1", data=b"small")
    too_large = sender.request("POST", "/upload", data=b"y" * 100)
    assert (big.status_code, len(big.content)) == (201, 100_000)
    assert too_large.status_code == 413
    assert done.wait(10)
    by_target = {r.target.split("?")[0]: r for r in records}
    assert by_target["/hc1/big"].status == 201 and by_target["/hc1/big"].body_bytes == 100_000
    assert by_target["/hc1/big"].via_rendezvous and by_target["/hc1/big"].method == "POST"
    assert by_target["/hc1/upload"].status == 413
    assert all(r.duration >= 0 and r.started > 0 for r in records)
