"""Listener pieces that need no relay: handler results, the pool, hooks, decisions, renewal timing."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Iterator, List

import pytest

from hybridconn import (
    ConfigurationError,
    RelayConnectionError,
    RelayedRequest,
    RelayedResponse,
    RelayTimeoutError,
)
from hybridconn._listener.accepting import AcceptQueue, choose_subprotocol, interpret_decision
from hybridconn._listener.handling import call_handler
from hybridconn._listener.pool import WorkPool
from hybridconn.auth import SharedAccessKeyTokenProvider, generate_sas_token, renewal_point
from hybridconn.listener import HybridConnectionListener


def _request() -> RelayedRequest:
    return RelayedRequest(id="r1", method="GET", target="/hc1/x")


# ---------------------------------------------------------------- call_handler


def test_no_handler_is_501() -> None:
    response = call_handler(None, _request())
    assert response.status == 501


def test_crashing_handler_is_500_with_tracking_id_and_no_exception_text(caplog: pytest.LogCaptureFixture) -> None:
    def handler(req: RelayedRequest) -> RelayedResponse:
        raise RuntimeError("secret-detail-xyz")

    with caplog.at_level(logging.ERROR):
        response = call_handler(handler, _request())
    assert response.status == 500
    assert "TrackingId:" in (response.reason or "")
    assert b"secret-detail-xyz" not in response.body  # type: ignore[operator]
    assert "secret-detail-xyz" not in (response.reason or "")
    tracking_id = (response.reason or "").split("TrackingId:")[1].rstrip(")")
    assert any(tracking_id in r.getMessage() for r in caplog.records)  # logged with the same id
    assert any(r.exc_info for r in caplog.records)  # and the traceback


def test_non_response_is_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = call_handler(lambda req: "hello", _request())
    assert response.status == 500
    assert any("instead of a RelayedResponse" in r.getMessage() for r in caplog.records)


def test_a_handlers_502_and_504_go_out_as_they_are() -> None:
    # The service delivers them (Microsoft's StatusCodes test); the relay's Via tells them apart.
    assert call_handler(lambda req: RelayedResponse(status=502), _request()).status == 502
    assert call_handler(lambda req: RelayedResponse(status=504), _request()).status == 504
    assert call_handler(lambda req: RelayedResponse(status=201, body=b"x"), _request()).status == 201


# ---------------------------------------------------------------- the pool


def test_pool_bounds_its_backlog_and_drains() -> None:
    pool = WorkPool("unit", max_workers=2, max_pending=3)
    release = threading.Event()
    started: List[int] = []

    def task(n: int) -> None:
        started.append(n)
        release.wait(10)

    try:
        accepted = [pool.submit("http", task, n) for n in range(7)]
        assert accepted == [True] * 5 + [False] * 2  # 2 running + 3 queued
        assert pool.in_flight == 5
        assert not pool.wait_idle(time.monotonic() + 0.05)
        release.set()
        assert pool.wait_idle(time.monotonic() + 10)
        assert sorted(started) == [0, 1, 2, 3, 4]
        assert pool.submit("http", task, 9)
    finally:
        release.set()
        assert pool.close(time.monotonic() + 10)
    assert not pool.submit("http", task, 10)


def test_pool_survives_a_crashing_task(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkPool("unit", max_workers=1, max_pending=1)
    done = threading.Event()

    def boom() -> None:
        raise ValueError("boom")

    try:
        with caplog.at_level(logging.ERROR):
            assert pool.submit("http", boom)
            assert pool.submit("http", done.set)
            assert done.wait(10)
    finally:
        assert pool.close(time.monotonic() + 10)
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_pool_close_from_inside_a_task_does_not_deadlock() -> None:
    pool = WorkPool("unit", max_workers=1, max_pending=0)
    result: List[bool] = []
    done = threading.Event()

    def closer() -> None:
        result.append(pool.close(time.monotonic() + 5))
        done.set()

    assert pool.submit("http", closer)
    assert done.wait(10)
    assert result == [False]  # it could not join itself, but returned


# ---------------------------------------------------------------- hooks and decisions


def test_hooks_work_as_decorators_and_attributes() -> None:
    listener = HybridConnectionListener("ws://127.0.0.1:9", "hc1", None)

    @listener.on_request
    def handle(req: RelayedRequest) -> RelayedResponse:
        return RelayedResponse()

    assert listener.on_request.handler is handle
    assert not listener.on_connection

    def online() -> None:
        pass

    listener.on_online = online
    assert listener.on_online.handler is online
    listener.on_online = None
    assert listener.on_online.handler is None
    with pytest.raises(TypeError):
        listener.on_offline = 42  # type: ignore[assignment]
    listener.close()


def test_interpret_decision() -> None:
    assert interpret_decision(True) == (None, "")
    assert interpret_decision(False) == (400, "Bad Request")
    assert interpret_decision(None) == (400, "Bad Request")
    assert interpret_decision((403, "go away")) == (403, "go away")
    assert interpret_decision(451) == (451, "Rejected")


def test_choose_subprotocol_picks_the_first_offered_that_the_app_supports() -> None:
    offered = {"Sec-WebSocket-Protocol": "chat.v2, chat.v1, mqtt"}
    assert choose_subprotocol(offered, ["chat.v1", "chat.v2"]) == "chat.v2"
    assert choose_subprotocol(offered, ["mqtt"]) == "mqtt"
    assert choose_subprotocol(offered, ["other"]) is None
    assert choose_subprotocol(offered, None) is None
    assert choose_subprotocol({}, ["chat.v1"]) is None


def test_accept_queue_times_out_and_wakes_on_close() -> None:
    queue = AcceptQueue(1)
    with pytest.raises(RelayTimeoutError):
        queue.get(0.05)
    got: List[object] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(None)))
    waiter.start()
    queue.close()
    waiter.join(5)
    assert got == [None]


# ---------------------------------------------------------------- renewal timing


@pytest.mark.parametrize(
    "life, expected",
    [(3600, 2880), (100, 70), (60, 30), (5, 2.5), (0, 0)],
)
def test_renewal_point(life: float, expected: float) -> None:
    assert renewal_point(1000.0, 1000.0 + life) == pytest.approx(1000.0 + expected)


def test_short_lived_tokens_are_reminted_at_half_life() -> None:
    now = [1_000_000.0]
    provider = SharedAccessKeyTokenProvider("k", "secret", ttl=10, clock=lambda: now[0])
    first, expiry = provider.get_token("http://ns/hc1")
    now[0] += 4.9
    assert provider.get_token("http://ns/hc1")[0] == first
    now[0] += 0.2
    second, later = provider.get_token("http://ns/hc1")
    assert second != first and later > expiry


# ---------------------------------------------------------------- construction and failures


def test_repr_shows_no_secret() -> None:
    cs = "Endpoint=sb://127.0.0.1:9/;SharedAccessKeyName=root;SharedAccessKey=TOPSECRETKEY;EntityPath=hc1;UseDevelopmentEmulator=true"
    listener = HybridConnectionListener.from_connection_string(cs)
    text = repr(listener)
    assert "TOPSECRETKEY" not in text and "hc1" in text and "state=new" in text
    listener.close()
    assert "state=closed" in repr(listener)


def test_bad_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        HybridConnectionListener("ws://127.0.0.1:9", "/", None)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def test_open_against_nothing_raises_and_leaves_nothing_running(closed_port: int) -> None:
    token = generate_sas_token("http://127.0.0.1/hc1", "k", "SECRETKEY")
    listener = HybridConnectionListener(f"ws://127.0.0.1:{closed_port}", "hc1", lambda aud: (token, time.time() + 60))
    with pytest.raises(RelayConnectionError) as info:
        listener.open(timeout=5)
    assert "SECRETKEY" not in str(info.value) and "sig=" not in str(info.value)
    assert not listener.is_online
    assert listener.last_error is info.value
    listener.close()


def test_retry_on_open_returns_after_timeout_and_keeps_trying(closed_port: int) -> None:
    attempts: List[int] = []
    listener = HybridConnectionListener(f"ws://127.0.0.1:{closed_port}", "hc1", None, retry_on_open=True,
                                        backoff=(0.05,), jitter=0)
    listener.on_connecting = lambda: attempts.append(1)
    listener.open(timeout=0.5)
    assert not listener.is_online
    assert isinstance(listener.last_error, RelayConnectionError)
    assert len(attempts) >= 2
    listener.close(timeout=5)
    assert listener.state == "closed"


# ---------------------------------------------------------------- logging a failed dispatch


def test_a_failed_dispatch_is_logged_by_kind_and_id_only() -> None:
    from hybridconn._listener.reader import describe_event as _describe
    from hybridconn.protocol import MessageReceived, ProtocolError, ProtocolViolation, Request

    request = Request(address="ws://relay/$hc/hc1?sb-hc-token=SECRET-TOKEN", id="req-7", method="POST",
                      request_target="/hc1/x", request_headers={"Authorization": "Bearer SECRET", "Cookie": "s=SECRET"},
                      has_body=True)
    text = _describe(MessageReceived(request, b"SECRET body"))
    assert "Request" in text and "req-7" in text
    assert "SECRET" not in text
    assert "SECRET" not in _describe(ProtocolViolation(ProtocolError("bad"), request))
    assert "no message" in _describe(ProtocolViolation(ProtocolError("bad")))


# ---------------------------------------------------------------- the pool's queued work at close


def test_drop_queued_cancels_work_not_started_and_returns_its_refusals() -> None:
    pool = WorkPool("units", 1, 4)
    entered, release = threading.Event(), threading.Event()
    refused: List[str] = []
    ran: List[str] = []
    assert pool.submit("http", lambda: (entered.set(), release.wait(10)), on_drop=lambda: refused.append("running"))
    assert entered.wait(5)
    for name in ("a", "b"):
        assert pool.submit("http", ran.append, name, on_drop=lambda name=name: refused.append(name))
    drops = pool.drop_queued()
    for drop in drops:
        drop()
    release.set()
    assert pool.close(time.monotonic() + 5)
    assert sorted(refused) == ["a", "b"] and ran == []
    assert pool.in_flight == 0


# ---------------------------------------------------------------- response status and reason


def test_status_description_keeps_printable_ascii_and_replaces_the_rest() -> None:
    from hybridconn._listener.handling import status_description

    assert status_description(200, None) is None
    assert status_description(201, "Made It") == "Made It"
    assert status_description(201, "OK\r\nSet-Cookie: x=1") == "Created"
    assert status_description(404, "Non trouvé") == "Not Found"
    assert status_description(299, "bad\x7f") is None  # no standard phrase: the relay picks one


def test_informational_status_is_replaced_by_500() -> None:
    assert call_handler(lambda req: RelayedResponse(status=100), _request()).status == 500
    assert call_handler(lambda req: RelayedResponse(status=200), _request()).status == 200


# ---------------------------------------------------------------- rendezvous readers (a socket pair as the relay)


class _RelaySide:
    """Both ends of a socket pair as WebSockets: ``conn`` for the listener, ``relay`` to script frames."""

    def __init__(self) -> None:
        import websocket

        from hybridconn.connection import HybridConnection

        ours, theirs = socket.socketpair()
        listener_ws, self.relay = websocket.WebSocket(), websocket.WebSocket()
        listener_ws.sock, listener_ws.connected = ours, True
        self.relay.sock, self.relay.connected = theirs, True
        self.relay.sock.settimeout(10)
        self.conn = HybridConnection(listener_ws, io_timeout=10)

    def send_request(self, request_id: str, has_body: bool) -> None:
        import json

        self.relay.send(json.dumps({"request": {"address": "ws://relay/x", "id": request_id, "method": "POST",
                                                "requestTarget": "/hc1/x", "requestHeaders": {}, "body": has_body}}))

    def close(self) -> None:
        self.relay.shutdown()
        self.conn.abort()


def test_broken_request_on_a_rendezvous_socket_is_answered_400() -> None:
    import json

    from hybridconn._deadline import Deadline
    from hybridconn._listener.handling import error_response
    from hybridconn._listener.rendezvous import RendezvousPool
    from hybridconn._listener.responder import Reply
    from hybridconn._transport import Dialer

    side = _RelaySide()
    refusals: List[int] = []

    class Sink:
        def rendezvous_request(self, request):  # type: ignore[no-untyped-def]
            pass

        def rendezvous_refusal(self, conn, message, status, text):  # type: ignore[no-untyped-def]
            refusals.append(status)
            Reply(message.id, rendezvous=conn).send(error_response(status, text))

    kept = RendezvousPool("units", Dialer(), 4)
    kept.sink = Sink()
    try:
        assert kept.serve(side.conn)
        side.send_request("r1", has_body=True)
        side.relay.send("a text frame where the body belongs")
        answer = json.loads(side.relay.recv())
        assert answer["response"]["requestId"] == "r1" and answer["response"]["statusCode"] == 400
        assert refusals == [400]
    finally:
        kept.close_all(Deadline(2))
        assert kept.join(Deadline(5))
        side.close()


def test_a_failing_rendezvous_reader_closes_its_socket(caplog: pytest.LogCaptureFixture) -> None:
    import websocket

    from hybridconn._deadline import Deadline
    from hybridconn._listener.rendezvous import RendezvousPool
    from hybridconn._transport import Dialer

    side = _RelaySide()
    hooked: List[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: hooked.append(args.exc_value)  # type: ignore[assignment]

    class BrokenSink:
        def rendezvous_request(self, *args: object) -> None:
            raise RuntimeError("boom")

        def rendezvous_refusal(self, *args: object) -> None:
            raise RuntimeError("boom")

    kept = RendezvousPool("units", Dialer(), 4)
    kept.sink = BrokenSink()
    try:
        with caplog.at_level(logging.ERROR, logger="hybridconn"):
            assert kept.serve(side.conn)
            side.send_request("r1", has_body=False)
            opcode, _ = side.relay.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE  # the reader closed its socket
            assert kept.join(Deadline(5))
        assert any("rendezvous reader" in r.getMessage() for r in caplog.records)
        assert hooked == [] and kept.sockets == 0
    finally:
        threading.excepthook = previous
        kept.close_all(Deadline(1))
        side.close()


# ---------------------------------------------------------------- constructors and signatures


def test_from_connection_string_takes_a_parsed_string_and_a_token_provider_override() -> None:
    from hybridconn.auth import ConnectionString, StaticTokenProvider

    text = "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0;EntityPath=hc1"
    parsed = HybridConnectionListener.from_connection_string(ConnectionString.parse(text))
    assert parsed.path == "hc1" and parsed.token_provider is not None and parsed.token_provider.renewable
    fixed = StaticTokenProvider("SharedAccessSignature sr=x&sig=y&se=1&skn=k")
    overridden = HybridConnectionListener.from_connection_string(text, token_provider=fixed, max_workers=2)
    assert overridden.token_provider is fixed
    for listener in (parsed, overridden):
        listener.close()


def test_client_connect_takes_everything_after_suffix_by_keyword() -> None:
    import inspect

    from hybridconn.client import HybridConnectionClient

    parameters = inspect.signature(HybridConnectionClient.connect).parameters
    assert [p for p in parameters if parameters[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == [
        "self", "suffix", "headers", "subprotocols"]  # the suffix first, as in request() (issue 19)
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("query", "id", "timeout"))
