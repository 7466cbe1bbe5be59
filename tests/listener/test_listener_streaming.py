"""Streamed request bodies (``stream_request_bodies=True``): ``request.stream`` fed as the body arrives.

Real sockets through the emulator: a large body by rendezvous, a chunked upload, a small body on
the control channel, a handler that answers without reading, a 1 GB upload in bounded memory.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests

from hybridconn import RelayedRequest, RelayedResponse
from hybridconn.listener import HybridConnectionListener
from tests.support.peak_rss import MB, PeakRss
from tests.support.plain_clients import Sender

Make = Callable[..., HybridConnectionListener]


def _digesting(seen: List[Dict[str, Any]]) -> Callable[[RelayedRequest], RelayedResponse]:
    def handler(req: RelayedRequest) -> RelayedResponse:
        digest, size, reads = hashlib.sha256(), 0, 0
        assert req.stream is not None
        while True:
            chunk = req.stream.read(256 * 1024)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            reads += 1
        seen.append({"streamed": req.streamed, "body": len(req.body), "size": size, "reads": reads})
        return RelayedResponse(body=f"{size} {digest.hexdigest()}".encode())
    return handler


def _chunks(data: bytes, size: int = 50_000) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at:at + size]


def test_large_and_chunked_bodies_stream_and_small_ones_read_from_memory(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, stream_request_bodies=True)
    seen: List[Dict[str, Any]] = []
    listener.on_request = _digesting(seen)
    listener.open(timeout=15)
    big = os.urandom(3 * MB + 7)
    with requests.Session() as session:
        r = sender.request("POST", "/big", session=session, data=big)
        assert r.status_code == 200 and r.content == f"{len(big)} {hashlib.sha256(big).hexdigest()}".encode()
        r = sender.request("POST", "/chunked", session=session, data=_chunks(big))  # no Content-Length
        assert r.content == f"{len(big)} {hashlib.sha256(big).hexdigest()}".encode()
    small = b"small body"
    assert sender.request("POST", "/small", data=small).content == f"10 {hashlib.sha256(small).hexdigest()}".encode()
    assert [s["streamed"] for s in seen] == [True, True, False]
    assert [s["body"] for s in seen] == [0, 0, len(small)]
    assert seen[0]["reads"] > 1


def test_a_handler_that_answers_without_reading_leaves_the_socket_usable(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, stream_request_bodies=True)
    lines: List[bytes] = []

    @listener.on_request
    def handler(req: RelayedRequest) -> RelayedResponse:
        assert req.stream is not None
        if req.path == "/line":
            lines.append(req.stream.readline())
            return RelayedResponse(status=202, body=b"first line only")
        return RelayedResponse(body=b"%d" % len(req.stream.read()))

    listener.open(timeout=15)
    body = b"first line\n" + os.urandom(2 * MB)
    with requests.Session() as session:
        r = sender.request("POST", "/line", session=session, data=body)
        assert (r.status_code, r.content) == (202, b"first line only")
        # the rest of the first body was read and dropped: the same connection carries the next request
        assert sender.request("POST", "/all", session=session, data=os.urandom(200_000)).content == b"200000"
    assert lines == [b"first line\n"]


def test_the_default_still_reads_the_whole_body_into_request_body(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False)
    seen: List[Dict[str, Any]] = []
    listener.on_request = _digesting(seen)
    listener.open(timeout=15)
    body = os.urandom(300_000)
    assert sender.request("POST", "/big", data=body).content.startswith(b"300000 ")
    assert seen == [{"streamed": False, "body": 0 + len(body), "size": len(body), "reads": 2}]


@pytest.mark.timeout(900)
def test_a_1_gb_upload_streams_in_bounded_memory(make_listener: Make, sender: Sender) -> None:
    listener = make_listener(open=False, stream_request_bodies=True, io_timeout=120)
    seen: List[Dict[str, Any]] = []
    listener.on_request = _digesting(seen)
    listener.open(timeout=15)
    total, block = 1024 * MB, os.urandom(MB)
    expected = hashlib.sha256()
    for _ in range(total // MB):
        expected.update(block)

    def upload() -> Iterator[bytes]:
        for _ in range(total // MB):
            yield block

    with PeakRss() as peak:
        r = sender.request("POST", "/upload", data=upload(), timeout=600)
    assert r.status_code == 200
    assert r.content == f"{total} {expected.hexdigest()}".encode()
    print(f"1 GB streamed upload: {peak!r}")
    assert peak.growth < 50 * MB, peak


def test_wsgi_input_reads_the_streamed_body_directly(make_listener: Make, sender: Sender) -> None:
    flask = pytest.importorskip("flask")
    from hybridconn.wsgi import serve_wsgi

    app = flask.Flask("streaming")
    inputs: List[Any] = []

    @app.route("/upload", methods=["POST"])
    def upload() -> Any:
        inputs.append(type(flask.request.environ["wsgi.input"]).__name__)
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: flask.request.stream.read(65536), b""):
            digest.update(chunk)
            size += len(chunk)
        return f"{size} {digest.hexdigest()}"

    listener = make_listener(open=False, stream_request_bodies=True)
    serve_wsgi(app, listener)
    listener.open(timeout=15)
    body = os.urandom(20 * MB)
    want = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    assert sender.request("POST", "/upload", data=body).content == want
    assert sender.request("POST", "/upload", data=_chunks(body, 1 << 20)).content == want  # chunked
    assert inputs == ["RequestBodyStream", "RequestBodyStream"]
