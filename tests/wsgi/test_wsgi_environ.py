"""build_environ and call_wsgi against PEP 3333, with small hand-written WSGI apps (no sockets)."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, Callable, Dict, Iterator, List
from wsgiref.validate import validator

import pytest

from hybridconn.addresses import Namespace
from hybridconn.wsgi import BUFFER_LIMIT, ErrorsStream, FileWrapper, build_environ, call_wsgi
from tests.support.wsgi_requests import body_of, make_request

pytestmark = pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning")

Environ = Dict[str, Any]


def capture_app(seen: List[Environ], body: bytes = b"ok") -> Callable[..., List[bytes]]:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        seen.append(dict(environ, **{"body": environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))}))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


def test_environ_follows_pep3333_for_a_post_with_suffix_and_query() -> None:
    request = make_request(
        "POST",
        "/users/7",
        query="x=1&y=%20two",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "curl/8",
            "X-Custom-Thing": "a",
            "Accept": "text/html",
        },
        body=b'{"a": 1}',
    )
    environ = build_environ(request, "contoso.servicebus.windows.net", "hc1")
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == "/hc1"
    assert environ["PATH_INFO"] == "/users/7"
    assert environ["QUERY_STRING"] == "x=1&y=%20two"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "8"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_USER_AGENT"] == "curl/8"
    assert environ["HTTP_X_CUSTOM_THING"] == "a"
    assert environ["HTTP_ACCEPT"] == "text/html"
    assert environ["SERVER_NAME"] == "contoso.servicebus.windows.net"
    assert environ["SERVER_PORT"] == "443"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.input"].read() == b'{"a": 1}'
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert "REMOTE_ADDR" not in environ  # the relay does not tell us the sender's address
    assert environ["hybridconn.request"] is request


def test_environ_on_the_emulator_is_plain_http_with_its_port() -> None:
    environ = build_environ(make_request(), Namespace.parse("ws://127.0.0.1:9350"), "/hc1/")
    assert environ["wsgi.url_scheme"] == "http"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "9350")
    assert environ["SCRIPT_NAME"] == "/hc1"
    assert environ["PATH_INFO"] == "/"


def test_environ_url_scheme_and_remote_addr_can_be_given() -> None:
    environ = build_environ(make_request(), "ws://127.0.0.1:9350", "hc1", url_scheme="https", remote_addr="10.0.0.5")
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["REMOTE_ADDR"] == "10.0.0.5"
    with pytest.raises(ValueError):
        build_environ(make_request(), "ws://127.0.0.1:9350", "hc1", url_scheme="ftp")


def test_request_to_the_bare_hybrid_connection_has_empty_path_info() -> None:
    environ = build_environ(make_request(suffix=""), "ns.servicebus.windows.net", "hc1")
    assert environ["SCRIPT_NAME"] == "/hc1"
    assert environ["PATH_INFO"] == ""


def test_path_info_is_percent_decoded_bytes_as_latin1() -> None:
    # "/caf%C3%A9/a%2Fb" -> bytes b"/caf\xc3\xa9/a/b" -> latin-1 str, as PEP 3333 wants.
    environ = build_environ(make_request(suffix="/caf%C3%A9/a%2Fb"), "ns.servicebus.windows.net", "hc1")
    assert environ["PATH_INFO"] == "/caf\xc3\xa9/a/b"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a/b"
    # Bytes that are not UTF-8 survive too.
    environ = build_environ(make_request(suffix="/%FF"), "ns.servicebus.windows.net", "hc1")
    assert environ["PATH_INFO"] == "/\xff"


def test_hybrid_connection_name_with_a_slash_is_the_whole_script_name() -> None:
    environ = build_environ(make_request(suffix="/x", name="team/hc1"), "ns.servicebus.windows.net", "team/hc1")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/team/hc1", "/x")


def test_non_latin1_header_values_are_utf8_bytes_as_str() -> None:
    environ = build_environ(make_request(headers={"X-Name": "Zoë ☃"}), "ns.servicebus.windows.net", "hc1")
    assert environ["HTTP_X_NAME"].encode("latin-1").decode("utf-8") == "Zoë ☃"


def test_duplicate_headers_are_combined_with_commas_and_underscored_names_dropped() -> None:
    request = make_request(headers={"Accept": "a"})
    request.headers["X-Multi"] = ["one", "two"]  # type: ignore[assignment]
    request.headers["X_Forwarded_User"] = "admin"
    environ = build_environ(request, "ns.servicebus.windows.net", "hc1")
    assert environ["HTTP_X_MULTI"] == "one,two"
    assert "HTTP_X_FORWARDED_USER" not in environ


def test_every_environ_passes_wsgiref_validator() -> None:
    seen: List[Environ] = []
    app = validator(capture_app(seen))
    for request in (
        make_request(),
        make_request("POST", "/a", "q=1", {"Content-Type": "text/plain"}, b"data"),
        make_request("DELETE", "", "", {"X-A": "b"}),
    ):
        response = call_wsgi(app, build_environ(request, "ns.servicebus.windows.net", "hc1"))
        assert (response.status, body_of(response)) == (200, b"ok")
    assert [e["body"] for e in seen] == [b"", b"data", b""]


def test_small_list_body_comes_back_as_bytes_with_headers_and_reason() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Id", "9"), ("Content-Length", "5")])
        return [b"he", b"llo"]

    response = call_wsgi(validator(app), build_environ(make_request(), "ns.servicebus.windows.net", "hc1"))
    assert response.status == 201
    assert response.reason == "Created"
    assert response.body == b"hello"
    # Content-Length is a connection header the relay forbids; it sets its own.
    assert response.headers == {"Content-Type": "text/plain", "X-Id": "9"}


def test_repeated_response_headers_are_joined() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept"), ("vary", "Cookie")])
        return [b""]

    response = call_wsgi(validator(app), build_environ(make_request(), "ns.servicebus.windows.net", "hc1"))
    assert response.headers["Vary"] == "Accept, Cookie"


def test_large_known_body_is_passed_as_chunks_for_rendezvous() -> None:
    chunk = b"x" * 50_000

    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [chunk, chunk, chunk]

    response = call_wsgi(validator(app), build_environ(make_request(), "ns.servicebus.windows.net", "hc1"))
    assert response.is_streamed
    assert body_of(response) == chunk * 3


class ClosingIterable:
    """An app iterable that records whether the server closed it."""

    def __init__(self, chunks: List[bytes], fail_at: int = -1) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("iterable failed: secret-detail-42")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def iterable_app(iterable: ClosingIterable) -> Callable[..., ClosingIterable]:
    def app(environ: Environ, start_response: Callable[..., Any]) -> ClosingIterable:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iterable

    return app


def test_small_iterable_is_buffered_and_closed() -> None:
    iterable = ClosingIterable([b"a", b"", b"b"])
    response = call_wsgi(validator(iterable_app(iterable)), build_environ(make_request(), "h.example", "hc1"))
    assert response.body == b"ab"
    assert iterable.closed == 1


def test_large_iterable_streams_and_is_closed_at_its_end() -> None:
    iterable = ClosingIterable([b"y" * 40_000] * 5)
    response = call_wsgi(validator(iterable_app(iterable)), build_environ(make_request(), "h.example", "hc1"))
    assert response.is_streamed
    assert iterable.closed == 0  # still being sent
    assert body_of(response) == b"y" * 200_000
    assert iterable.closed == 1


def test_streamed_body_that_is_never_iterated_still_closes_the_app_iterable() -> None:
    iterable = ClosingIterable([b"z" * 40_000] * 5)
    response = call_wsgi(validator(iterable_app(iterable)), build_environ(make_request(), "h.example", "hc1"))
    response.body.close()  # type: ignore[union-attr]
    assert iterable.closed == 1


def test_generator_app_streams_even_when_small() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])  # called lazily, on first next()
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    # Unwrapped: a generator is recognised and streamed from its first chunk on.
    response = call_wsgi(app, build_environ(make_request(), "h.example", "hc1"))
    assert response.status == 200
    assert response.is_streamed
    assert body_of(response) == b"data: 1\n\ndata: 2\n\n"
    # Behind a middleware (here the validator) it is an opaque iterable: buffered while small.
    response = call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    assert (response.status, response.body) == (200, b"data: 1\n\ndata: 2\n\n")


def test_file_wrapper_streams_the_file_and_closes_it() -> None:
    data = bytes(range(256)) * 1000
    handle = io.BytesIO(data)

    def app(environ: Environ, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle, 8192)

    environ = build_environ(make_request(), "h.example", "hc1")
    assert environ["wsgi.file_wrapper"] is FileWrapper
    response = call_wsgi(app, environ)
    assert response.is_streamed
    assert body_of(response) == data
    assert handle.closed


def test_write_callable_output_comes_first() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    response = call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    assert response.body == b"written returned"


def test_start_response_with_exc_info_replaces_headers_before_the_body() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"try later"]

    response = call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    assert (response.status, response.body) == (503, b"try later")


def test_start_response_twice_without_exc_info_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"never"]

    response = call_wsgi(app, build_environ(make_request(), "h.example", "hc1"))
    assert response.status == 500


def test_exc_info_after_the_body_started_reraises_the_apps_error(caplog: pytest.LogCaptureFixture) -> None:
    reraised: List[BaseException] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first chunk"
        try:
            raise KeyError("mid-stream")
        except KeyError:
            try:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            except KeyError as exc:
                reraised.append(exc)
                raise

    response = call_wsgi(app, build_environ(make_request(), "h.example", "hc1"))
    assert response.is_streamed
    chunks = iter(response.body)  # type: ignore[arg-type]
    assert next(chunks) == b"first chunk"
    with pytest.raises(KeyError):
        next(chunks)
    assert len(reraised) == 1


def test_app_raising_before_start_response_gives_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        raise RuntimeError("database password is hunter2")

    caplog.set_level(logging.ERROR, logger="hybridconn.wsgi")
    response = call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    assert response.status == 500
    assert b"hunter2" not in response.body  # type: ignore[operator]
    assert response.reason and response.reason.startswith("Internal Server Error (TrackingId:")
    tracking_id = response.reason.split("TrackingId:")[1].rstrip(")")
    assert response.body == response.reason.encode()
    records = [r for r in caplog.records if r.name == "hybridconn.wsgi"]
    assert records and tracking_id in records[-1].getMessage()
    assert records[-1].exc_info is not None and "hunter2" in str(records[-1].exc_info[1])


def test_iterable_failing_before_the_first_byte_gives_500_and_is_closed() -> None:
    iterable = ClosingIterable([b"never"], fail_at=0)
    response = call_wsgi(validator(iterable_app(iterable)), build_environ(make_request(), "h.example", "hc1"))
    assert response.status == 500
    assert b"secret-detail" not in response.body  # type: ignore[operator]
    assert iterable.closed == 1


def test_iterable_failing_mid_stream_raises_to_the_sender_side_and_is_closed() -> None:
    iterable = ClosingIterable([b"q" * 40_000] * 3, fail_at=2)
    response = call_wsgi(iterable_app(iterable), build_environ(make_request(), "h.example", "hc1"))
    assert response.is_streamed
    with pytest.raises(RuntimeError):
        b"".join(response.body)  # type: ignore[arg-type]
    assert iterable.closed == 1


def test_app_returning_without_start_response_gives_500() -> None:
    response = call_wsgi(lambda environ, start_response: [], build_environ(make_request(), "h.example", "hc1"))
    assert response.status == 500


def test_app_yielding_str_gives_500() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[Any]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]

    assert call_wsgi(app, build_environ(make_request(), "h.example", "hc1")).status == 500


def test_wsgi_errors_goes_to_the_errors_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hybridconn.wsgi.errors")

    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("first line\nsecond ")
        errors.writelines(["line\n"])
        errors.write("unterminated")
        errors.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    messages = [r.getMessage() for r in caplog.records if r.name == "hybridconn.wsgi.errors"]
    assert messages == ["first line", "second line", "unterminated"]
    assert isinstance(build_environ(make_request(), "h.example", "hc1")["wsgi.errors"], ErrorsStream)


def test_buffer_limit_matches_the_control_channel() -> None:
    assert BUFFER_LIMIT == 65_536


def test_head_answer_has_no_body_and_the_app_iterable_is_closed() -> None:
    iterable = ClosingIterable([b"w" * 40_000] * 3)
    response = call_wsgi(validator(iterable_app(iterable)), build_environ(make_request("HEAD"), "h.example", "hc1"))
    assert (response.status, response.body) == (200, b"")
    assert iterable.closed == 1


def test_repeated_set_cookie_is_never_folded() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> List[bytes]:
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
                ("set-cookie", "c=3"),
            ],
        )
        return [b""]

    response = call_wsgi(validator(app), build_environ(make_request(), "h.example", "hc1"))
    cookies = {key: value for key, value in response.headers.items() if key.lower() == "set-cookie"}  # type: ignore[union-attr]
    assert list(cookies.values()) == ["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/", "b=2; Path=/", "c=3"]
    assert len(set(cookies)) == 3
    assert next(iter(cookies)) == "Set-Cookie"
