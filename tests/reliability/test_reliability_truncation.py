"""Truncation never looks complete: a response body that breaks off reaches the HTTP sender as a
broken response (the relay cuts its connection before the terminating chunk), and
``HybridConnectionClient.request`` raises instead of returning a short ``content``. A wrong body
type known before the first byte is a 500 with a tracking id instead.

The sources of a broken body: a handler's generator that raises midway, a chunk of the wrong type
(``str``, a dict), a WSGI iterable that raises after its headers, and a listener that closes its
rendezvous socket with a code other than 1000 (or loses it) before the body's final frame."""

from __future__ import annotations

import json
import random
import threading
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
import websocket

from hybridconn import RelayConnectionError, RelayedRequest, RelayedResponse
from hybridconn.addresses import rendezvous_request_url
from hybridconn.emulator import RelayEmulator
from hybridconn.emulator.access import DEFAULT_KEY, DEFAULT_KEY_NAME
from hybridconn.protocol import Request, Response, serialize_message
from hybridconn.wsgi import serve_wsgi
from hybridconn._transport import open_websocket
from tests.support.endpoints import make_client, make_listener
from tests.support.tiny_listener import TinyListener

ROWS = 5000
ROW = b"%06d,some,columns,of,a,csv,export\n"


def _rows(fail_at: int) -> Iterator[bytes]:
    for i in range(ROWS):
        if i == fail_at:
            raise RuntimeError("the database went away")
        yield ROW % i


def _bad_chunk_after(count: int, bad: Any) -> Iterator[Any]:
    for i in range(count):
        yield ROW % i
    yield bad


HANDLERS: Dict[str, Callable[[], Any]] = {
    "/raise-midway": lambda: _rows(2999),
    "/raise-early": lambda: _rows(10),  # still after the first chunk: the head is out
    "/str-chunk": lambda: _bad_chunk_after(3000, "a str row\n"),
    "/dict-chunk": lambda: _bad_chunk_after(3000, {"row": 1}),
    "/none-chunk": lambda: _bad_chunk_after(5, None),
}

FIRST_CHUNK_WRONG: Dict[str, Callable[[], Any]] = {
    "/first-str": lambda: iter(["text, not bytes"]),
    "/list-of-str": lambda: ["a", "b"],
    "/dict-body": lambda: {"a": 1},
    "/int-body": lambda: 42,
}


def _handler(req: RelayedRequest) -> RelayedResponse:
    if req.path == "/complete":
        return RelayedResponse(body=(ROW % i for i in range(ROWS)))
    if req.path in FIRST_CHUNK_WRONG:
        return RelayedResponse(body=FIRST_CHUNK_WRONG[req.path]())
    return RelayedResponse(headers={"Content-Type": "text/csv"}, body=HANDLERS[req.path]())


@pytest.fixture
def pair(relay: RelayEmulator) -> Iterator[Any]:
    listener = make_listener(relay)
    listener.on_request = _handler
    listener.open(timeout=15)
    assert relay.wait_for_listeners("hc1", 1, timeout=10)
    client = make_client(relay)
    try:
        yield client
    finally:
        client.close()
        listener.close()


def _assert_complete(client: Any) -> None:
    response = client.request("GET", "/complete", timeout=30)
    assert response.status_code == 200
    assert response.content == b"".join(ROW % i for i in range(ROWS))


@pytest.mark.parametrize("path", sorted(HANDLERS))
def test_a_body_that_breaks_off_is_an_error_for_the_sender(pair: Any, path: str) -> None:
    with pytest.raises(RelayConnectionError, match="broke off"):
        pair.request("GET", path, timeout=30)
    _assert_complete(pair)  # the pair keeps working


@pytest.mark.parametrize("path", sorted(HANDLERS))
def test_a_streamed_read_of_a_broken_body_raises_too(pair: Any, path: str) -> None:
    response = pair.request("GET", path, timeout=30, stream=True)
    assert response.status_code == 200  # the head was out before the body failed
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for _ in response.iter_content(65536):
            pass
    response.close()


@pytest.mark.parametrize("path", sorted(FIRST_CHUNK_WRONG))
def test_a_wrong_body_type_known_before_the_first_byte_is_a_500(pair: Any, path: str) -> None:
    response = pair.request("GET", path, timeout=30)
    assert response.status_code == 500
    assert "TrackingId" in response.text or "tracking" in response.text.lower()
    assert "Via" in response.headers  # the listener's answer, not the relay's


def _wsgi_app(environ: Dict[str, Any], start_response: Any) -> Iterator[bytes]:
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "text/csv")])
    if path == "/first-str":
        yield "not bytes"  # type: ignore[misc]
        return
    for i in range(ROWS):
        if path == "/raise" and i == 2999:
            raise RuntimeError("the export failed")
        if path == "/str" and i == 2999:
            yield "a str row"  # type: ignore[misc]
        yield ROW % i


def test_a_wsgi_iterable_that_fails_after_its_headers_is_an_error_for_the_sender(relay: RelayEmulator) -> None:
    listener = make_listener(relay)
    serve_wsgi(_wsgi_app, listener)
    listener.open(timeout=15)
    client = make_client(relay)
    try:
        for path in ("/raise", "/str"):
            with pytest.raises(RelayConnectionError, match="broke off"):
                client.request("GET", path, timeout=30)
        first = client.request("GET", "/first-str", timeout=30)
        assert first.status_code == 500  # nothing was sent yet: a clean error
        whole = client.request("GET", "/whole", timeout=30)
        assert whole.content == b"".join(ROW % i for i in range(ROWS))
    finally:
        client.close()
        listener.close()


# ------------------------------------------------------------------------------------------------
# A listener written on the protocol: it closes its rendezvous socket mid-body with a chosen code.


class _CuttingListener(TinyListener):
    """Answers every request over its rendezvous address with a body that stops after one fragment,
    then ends the socket: a close with ``code`` (0: the TCP connection is just shut)."""

    def __init__(self, *args: Any, code: int, **kwargs: Any) -> None:
        self.code = code
        self.cut = threading.Event()
        super().__init__(*args, **kwargs)

    def _answer(self, request: Request, body: bytes, on_control_channel: bool, rendezvous: Any = None) -> None:
        ws = open_websocket(rendezvous_request_url(request.address), timeout=10, what="rendezvous")
        try:
            head = serialize_message(Response(request_id=request.id, status_code=200, has_body=True))
            ws.send(head, websocket.ABNF.OPCODE_TEXT)
            ws.send_frame(websocket.ABNF.create_frame(b"x" * 70000, websocket.ABNF.OPCODE_BINARY, fin=0))
            if self.code == 1000:
                # a normal close after a final frame: the one ending that counts as complete
                ws.send_frame(websocket.ABNF.create_frame(b"end", websocket.ABNF.OPCODE_CONT, fin=1))
            if self.code:
                ws.close(status=self.code, timeout=5)
        finally:
            ws.shutdown()
            self.cut.set()


@pytest.mark.parametrize("code", [1001, 1011, 4000, 0])
def test_a_rendezvous_closed_before_the_final_frame_is_a_broken_response(relay: RelayEmulator, code: int) -> None:
    with _CuttingListener(relay.namespace, "hc1", DEFAULT_KEY_NAME, DEFAULT_KEY, code=code) as tiny:
        client = make_client(relay)
        try:
            with pytest.raises(RelayConnectionError, match="broke off"):
                client.request("GET", "/export", timeout=30)
            assert tiny.cut.wait(15)
        finally:
            client.close()


def test_a_normal_close_after_the_final_frame_is_complete(relay: RelayEmulator) -> None:
    with _CuttingListener(relay.namespace, "hc1", DEFAULT_KEY_NAME, DEFAULT_KEY, code=1000):
        client = make_client(relay)
        try:
            response = client.request("GET", "/export", timeout=30)
            assert response.status_code == 200
            assert response.content == b"x" * 70000 + b"end"
        finally:
            client.close()


# ------------------------------------------------------------------------------------------------


def _truncation_run(relay: RelayEmulator, count: int, seed: int) -> None:
    rng = random.Random(seed)
    listener = make_listener(relay, max_workers=8)

    def handler(req: RelayedRequest) -> RelayedResponse:
        fail_at = int(req.headers["X-Fail-At"])
        return RelayedResponse(body=_rows(fail_at))

    listener.on_request = handler
    listener.open(timeout=15)
    client = make_client(relay)
    outcomes: List[str] = []
    try:
        for _ in range(count):
            fail_at = rng.choice((1, rng.randrange(2, ROWS), ROWS))  # ROWS: never fails
            try:
                response = client.request("GET", "/", headers={"X-Fail-At": str(fail_at)}, timeout=30)
            except RelayConnectionError:
                outcomes.append("broken")
                assert fail_at < ROWS
                continue
            assert fail_at == ROWS, f"a body failing at row {fail_at} came back as a complete {response.status_code}"
            assert response.content == b"".join(ROW % i for i in range(ROWS))
            outcomes.append("complete")
    finally:
        client.close()
        listener.close()
    print(json.dumps({"requests": count, "broken": outcomes.count("broken"), "complete": outcomes.count("complete")}))
    assert "complete" in outcomes and "broken" in outcomes


def test_random_cut_points_never_look_complete(relay: RelayEmulator) -> None:
    _truncation_run(relay, 20, seed=15)


@pytest.mark.stress
@pytest.mark.timeout(900)
def test_random_cut_points_never_look_complete_stress(relay: RelayEmulator) -> None:
    _truncation_run(relay, 400, seed=1515)
