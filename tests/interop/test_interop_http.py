"""Scenarios 3, 4 and 5b: relayed HTTP between hyco-https 1.4.5 / plain Node HTTP and hybridconn.

3. hyco-https listener   <-> emulator <-> hybridconn HTTP sender (requests)
4. hybridconn listener   <-> emulator <-> Node HTTP sender signing with createRelayToken
5b. hyco-https listener  <-> emulator <-> Node HTTP sender (no hybridconn code on either end)

Both listeners serve the same routes (peers/https_listener.js and ``python_routes`` below),
and every scenario runs the same request cases and checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl

import pytest

from hybridconn import HybridConnectionClient, HybridConnectionListener, RelayedRequest, RelayedResponse
from hybridconn.addresses import listen_url
from tests.support.node_peers import (
    NodePeer, b64, binary_payload, pattern, peer_args, requires_node, run_node_events, unb64,
)

pytestmark = [pytest.mark.interop, requires_node]

TIMEOUT = 30.0
BIG = 1024 * 1024


@dataclass
class Reply:
    """A response as the sender saw it, whichever sender it was."""

    status: int
    reason: str
    headers: Dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Case:
    id: str
    method: str
    target: str  # after /{hc}
    check: Callable[[Reply], None]
    headers: Dict[str, str] = field(default_factory=dict)
    body: Optional[bytes] = None


def _json(reply: Reply) -> Any:
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    return json.loads(reply.body.decode("utf-8"))


def check_get_echo(reply: Reply) -> None:
    assert reply.status == 200, reply
    echo = _json(reply)
    assert echo["method"] == "GET"
    assert echo["url"] == "/hc1/echo?x=1&y=two%20words&empty="
    assert echo["path"] == "/echo"
    assert echo["query"] == {"x": "1", "y": "two words", "empty": ""}
    assert echo["headers"]["x-test"] == "interop"
    assert echo["headers"]["accept"] == "application/json"
    # The relay strips its auth header and sb-hc-* parameters before the listener sees them.
    assert "servicebusauthorization" not in echo["headers"]
    assert "sb-hc-" not in echo["url"]
    assert echo["bodySize"] == 0


def check_post_echo(body: bytes) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.status == 200, reply
        assert reply.headers["content-type"] == "application/x-interop"
        assert reply.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()
        assert (len(reply.body), hashlib.sha256(reply.body).hexdigest()) == (
            len(body),
            hashlib.sha256(body).hexdigest(),
        )

    return check


def check_bytes(expected: bytes) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.status == 200, reply
        assert reply.headers["content-type"] == "application/octet-stream"
        assert (len(reply.body), reply.body[:32]) == (len(expected), expected[:32])
        assert hashlib.sha256(reply.body).hexdigest() == hashlib.sha256(expected).hexdigest()

    return check


def check_status(code: int, reason: Optional[str] = None) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.status == code, reply
        assert reply.headers["x-status"] == str(code)
        if reason is not None:
            assert reply.reason == reason
        if code in (204, 304):
            assert reply.body == b""
        else:
            assert reply.body == f"status {code}".encode()

    return check


def check_headers(reply: Reply) -> None:
    assert reply.status == 200, reply
    assert reply.headers["x-single"] == "one"
    assert reply.headers["x-mixed-case"] == "Value"
    # hyco-https keeps only the first value of a multi-valued header
    # (hyco-https/lib/_hyco_outgoing.js:227-228), so only a=1 is asserted.
    cookies = reply.headers["set-cookie"]  # Node's http client always gives a list here
    assert (cookies[0] if isinstance(cookies, list) else cookies).startswith("a=1")
    seen = _json(reply)
    assert seen["x-custom-request"] == "custom value"
    assert seen["x-second"] == "2"


def check_head(reply: Reply) -> None:
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/json"
    assert reply.body == b""


def _post(size: int) -> Case:
    body = binary_payload(size)
    return Case(f"post-echo-{size}", "POST", "/echo", check_post_echo(body),
                headers={"Content-Type": "application/x-interop"}, body=body)


CASES: List[Case] = [
    Case("get-echo-query", "GET", "/echo?x=1&y=two%20words&empty=", check_get_echo,
         headers={"X-Test": "interop", "Accept": "application/json"}),
    *[_post(size) for size in (0, 1000, 65536, 65537, BIG)],
    # 65 536 bytes still fit the control channel; 65 537 make hyco-https answer over a
    # rendezvous socket (_hyco_outgoing.js:42, strictly greater than 64 kB).
    *[Case(f"big-{size}", "GET", f"/big?size={size}", check_bytes(pattern(size))) for size in (65536, 65537, BIG)],
    Case("stream", "GET", "/stream?chunks=20&size=5000", check_bytes(pattern(5000) * 20)),
    *[Case(f"status-{code}", "GET", f"/status?code={code}", check_status(code))
      for code in (201, 202, 204, 400, 404, 418, 500, 503)],
    Case("status-custom-reason", "GET", "/status?code=299&reason=Custom%20Reason", check_status(299, "Custom Reason")),
    Case("headers", "GET", "/headers", check_headers, headers={"X-Custom-Request": "custom value", "X-Second": "2"}),
    Case("no-route", "DELETE", "/nowhere", lambda r: (r.status == 404) or pytest.fail(str(r))),
    # hyco-https answers a HEAD whose handler calls res.end(data) with "body": true and the
    # data (_hyco_outgoing.js:721-722 overrides ServerResponse's _hasBody, :111); the relay drops it.
    Case("head-echo", "HEAD", "/echo?x=1", check_head),
]
CASE_IDS = [c.id for c in CASES]


# ------------------------------------------------------------------------------------------
# Senders


def hybridconn_send(client: HybridConnectionClient, case: Case) -> Reply:
    response = client.request(case.method, case.target, headers=case.headers, data=case.body, timeout=TIMEOUT)
    return Reply(response.status_code, response.reason, {k.lower(): v for k, v in response.headers.items()},
                 response.content)


def node_send(relay: Any, cases: List[Case], fresh: bool = False) -> List[Reply]:
    ns = relay.namespace.split("://", 1)[1]
    args = peer_args(ns=ns, hc="hc1")
    specs = [
        {"method": c.method, "target": c.target, "headers": c.headers, "fresh": fresh,
         **({"b64": b64(c.body)} if c.body is not None else {})}
        for c in cases
    ]
    events = run_node_events("http_sender.js", args, stdin=specs, timeout=60)
    assert events and events[-1]["event"] == "done", events
    replies = []
    for index, event in enumerate(events[:-1]):
        assert event.get("event") == "response" and event["index"] == index, event
        replies.append(Reply(event["status"], event["statusMessage"], event["headers"], unb64(event["b64"])))
    return replies


# ------------------------------------------------------------------------------------------
# Listeners


@pytest.fixture
def hyco_https_listener(relay: Any, start_peer: Any) -> NodePeer:
    peer = start_peer("https_listener.js", *peer_args(uri=listen_url(relay.namespace, "hc1"), hc="hc1"))
    peer.wait_for("listening")
    relay.wait_for_listeners("hc1", count=1, timeout=10)
    return peer


def python_routes(req: RelayedRequest) -> RelayedResponse:
    """The routes of peers/https_listener.js, served by hybridconn."""
    query = dict(parse_qsl(req.query, keep_blank_values=True))
    if req.path == "/echo" and req.method == "POST":
        return RelayedResponse(200, {"Content-Type": req.headers.get("content-type", "application/octet-stream"),
                                     "X-Body-SHA256": hashlib.sha256(req.body).hexdigest()}, req.body)
    if req.path == "/echo":
        echo = {"method": req.method, "url": req.target, "path": req.path, "query": query,
                "headers": {k.lower(): v for k, v in req.headers.items()}, "bodySize": len(req.body)}
        return RelayedResponse(200, {"Content-Type": "application/json"}, json.dumps(echo))
    if req.path == "/big":
        return RelayedResponse(200, {"Content-Type": "application/octet-stream"}, pattern(int(query["size"])))
    if req.path == "/stream":
        chunk = pattern(int(query["size"]))
        return RelayedResponse(200, {"Content-Type": "application/octet-stream"},
                               (chunk for _ in range(int(query["chunks"]))))
    if req.path == "/status":
        code = int(query["code"])
        body = b"" if code in (204, 304) else f"status {code}".encode()
        headers = {"X-Status": str(code)}
        if body:
            headers["Content-Type"] = "text/plain"
        return RelayedResponse(code, headers, body, reason=query.get("reason"))
    if req.path == "/headers":
        return RelayedResponse(200, {"x-single": "one", "X-Mixed-Case": "Value", "Set-Cookie": "a=1",
                                     "Content-Type": "application/json"},
                               json.dumps({k.lower(): v for k, v in req.headers.items()}))
    return RelayedResponse(404, {"Content-Type": "text/plain"}, f"no route {req.path}")


@pytest.fixture
def python_listener(relay: Any) -> Iterator[HybridConnectionListener]:
    listener = HybridConnectionListener.from_connection_string(relay.connection_string("hc1"))
    listener.on_request(python_routes)
    listener.open(timeout=TIMEOUT)
    try:
        yield listener
    finally:
        listener.close(timeout=10)


@pytest.fixture
def client(relay: Any) -> Iterator[HybridConnectionClient]:
    with HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as sender:
        yield sender


# ------------------------------------------------------------------------------------------
# 3. hyco-https listener <-> hybridconn sender


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hyco_https_listener_serves_hybridconn_sender(
    hyco_https_listener: NodePeer, client: HybridConnectionClient, case: Case
) -> None:
    case.check(hybridconn_send(client, case))
    seen = hyco_https_listener.wait_for("request")
    assert (seen["method"], seen["url"]) == (case.method, "/hc1" + case.target)
    expected_body = case.body or b""
    assert (seen["bodySize"], seen["bodySha256"]) == (len(expected_body), hashlib.sha256(expected_body).hexdigest())


def test_hyco_https_listener_serves_concurrent_hybridconn_requests(relay: Any, hyco_https_listener: NodePeer) -> None:
    """Interleaved requests on one control channel, small and rendezvous-sized answers mixed."""
    from concurrent.futures import ThreadPoolExecutor

    def send_alone(case: Case) -> Reply:
        # A client (so an HTTP connection) per request: hyco-https never reads the rendezvous
        # socket it opens for a large response, so a later request that the relay sends over
        # it (spec: "subsequent requests from that respective client MUST be delivered over
        # the rendezvous socket") is never answered - see the test below.
        with HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as own:
            return hybridconn_send(own, case)

    # status-204 and head-echo leave a stray empty binary message on the control channel
    # (_hyco_outgoing.js:733-735), which the relay must ignore between requests.
    picked = [
        c
        for c in CASES
        if c.id in ("get-echo-query", "big-65537", "post-echo-1000", "status-204", "head-echo", "big-65536")
    ]
    with ThreadPoolExecutor(max_workers=5, thread_name_prefix="interop-senders") as pool:
        replies = list(pool.map(send_alone, picked * 2))
    for case, reply in zip(picked * 2, replies):
        case.check(reply)


@pytest.mark.parametrize("listener_kind", ["hyco-https", "hybridconn"])
def test_request_after_a_rendezvous_response_on_a_kept_alive_connection(start_peer: Any, listener_kind: str) -> None:
    """After a >64 kB response the relay routes that sender connection's next request over
    the listener's rendezvous socket (spec, "Responding via rendezvous").

    hyco-https 1.4.5 opens that socket only to write the response
    (hyco-https/lib/_hyco_outgoing.js:684-690) and never reads it: only sockets opened for
    address-only requests get a reader (HybridConnectionHttpsServer.js:599-614, 653-672).
    So the second request goes unanswered and the relay answers 504, as the service would.
    hybridconn's listener serves it.
    """
    from hybridconn.emulator import RelayEmulator
    from hybridconn.exceptions import RelayTimeoutError

    with RelayEmulator(hybrid_connections=("hc1",), response_timeout=2.0) as short_relay:
        if listener_kind == "hyco-https":
            peer = start_peer("https_listener.js", *peer_args(uri=listen_url(short_relay.namespace, "hc1"), hc="hc1"))
            peer.wait_for("listening")
            short_relay.wait_for_listeners("hc1", count=1, timeout=10)
            listener = None
        else:
            listener = HybridConnectionListener.from_connection_string(short_relay.connection_string("hc1"))
            listener.on_request(python_routes)
            listener.open(timeout=TIMEOUT)
        try:
            with HybridConnectionClient.from_connection_string(short_relay.connection_string("hc1")) as sender:
                big = next(c for c in CASES if c.id == "big-65537")
                big.check(hybridconn_send(sender, big))
                echo = next(c for c in CASES if c.id == "get-echo-query")
                if listener_kind == "hyco-https":
                    with pytest.raises(RelayTimeoutError):
                        hybridconn_send(sender, echo)
                    assert [e["url"] for e in peer.wait_for_count("request", 1)] == ["/hc1/big?size=65537"]
                else:
                    echo.check(hybridconn_send(sender, echo))
        finally:
            if listener is not None:
                listener.close(timeout=10)


# ------------------------------------------------------------------------------------------
# 4. hybridconn listener <-> Node HTTP sender


@pytest.mark.parametrize("connection", ["kept-alive", "fresh"])
def test_hybridconn_listener_serves_node_http_sender(
    relay: Any, python_listener: HybridConnectionListener, connection: str
) -> None:
    # One node process runs every case in order (a process per case would cost ~20 s).
    # Kept alive, everything after the first rendezvous goes over that socket (spec).
    replies = node_send(relay, CASES, fresh=connection == "fresh")
    failures = []
    for case, reply in zip(CASES, replies):
        try:
            case.check(reply)
        except Exception as exc:  # noqa: BLE001 - report every case, not just the first
            failures.append(f"{case.id}: {exc!r}")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------
# 5b. hyco-https listener <-> Node HTTP sender


@pytest.mark.parametrize("connection", ["kept-alive", "fresh"])
def test_hyco_https_listener_serves_node_http_sender(
    relay: Any, hyco_https_listener: NodePeer, connection: str
) -> None:
    # Kept alive, this works only because CASES sends an address-only request (post-echo-65537)
    # before any >64 kB response: hyco-https reads rendezvous sockets it opened for a request
    # but not those it opened for a response (see test_request_after_a_rendezvous_response...).
    replies = node_send(relay, CASES, fresh=connection == "fresh")
    failures = []
    for case, reply in zip(CASES, replies):
        try:
            case.check(reply)
        except Exception as exc:  # noqa: BLE001 - report every case, not just the first
            failures.append(f"{case.id}: {exc!r}")
    assert not failures, "\n".join(failures)
    assert len(hyco_https_listener.wait_for_count("request", len(CASES))) == len(CASES)
