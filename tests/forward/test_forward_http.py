"""``-H``: the HTTP reverse proxy, through the emulator, to a real ``http.server`` and a Flask app.

The sender is plain ``requests`` calling the emulator's HTTP endpoint; the forwarder re-issues each
request to the upstream and relays the answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Iterator

import pytest
import requests

from hybridconn.emulator import RelayEmulator
from hybridconn.exceptions import ConfigurationError
from hybridconn.forward.http_proxy import HttpForwarder
from hybridconn.forward.http_rules import parse_http_spec
from tests.forward.http_upstream import Upstream, pattern
from tests.support.peak_rss import MB, PeakRss
from tests.support.plain_clients import Sender

HC = "fwd"


@pytest.fixture
def web() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def sender(relay: RelayEmulator) -> Iterator[Sender]:
    s = Sender(relay, HC)
    yield s
    s.close()


@pytest.fixture
def proxy(cs: str, web: Upstream) -> Iterator[HttpForwarder]:
    forwarder = HttpForwarder.from_connection_string(cs, parse_http_spec(f"{HC}:http/127.0.0.1/app:{web.port}"),
                                                     io_timeout=120, read_timeout=120)
    forwarder.start(timeout=15)
    try:
        yield forwarder
    finally:
        forwarder.close(timeout=10)


def test_http_specs_parse_as_azbridge_writes_them() -> None:
    u = parse_http_spec("web:http/localhost:8080")
    assert (u.relay, u.scheme, u.host, u.port, u.base_path) == ("web", "http", "localhost", 8080, "")
    u = parse_http_spec("web:https//jenkins/:443")
    assert (u.scheme, u.host, u.base_path) == ("https", "localhost", "/jenkins")
    u = parse_http_spec("web:HTTPS/grafana.lan/a/b:3000")
    assert (u.scheme, u.host, u.port, u.base_path) == ("https", "grafana.lan", 3000, "/a/b")
    for bad in ("web", "web:ftp/host:21", "web:http/host:x", ":http/host:80", "web:http/host:0"):
        with pytest.raises(ConfigurationError, match="-H"):
            parse_http_spec(bad)


def test_method_path_query_headers_go_upstream_stripped_of_the_relay_name(
        proxy: HttpForwarder, web: Upstream, sender: Sender) -> None:
    target = "/echo/a%2Fb/%7Euser?q=a%20b&x=%2F&empty=&flag&%7E"
    headers = dict(sender.headers, **{"X-Custom": "kept", "Keep-Alive": "timeout=5",
                                      "Proxy-Authorization": "Basic c2VjcmV0", "X-Forwarded-For": "10.0.0.9"})
    with requests.Session() as session:
        prepared = session.prepare_request(requests.Request("GET", sender.url(target), headers=headers))
        prepared.url = sender.url(target)  # as typed: requests would turn %7E into ~
        r = session.send(prepared, timeout=30)
    assert r.status_code == 200, r.text
    method, path, headers = web.seen[-1]
    assert (method, path) == ("GET", "/app" + target)  # byte-identical path and query, /fwd stripped
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-custom"] == "kept"
    assert "keep-alive" not in lower and "proxy-authorization" not in lower
    assert "servicebusauthorization" not in lower  # the relay token never reaches the upstream
    assert lower["x-forwarded-for"].startswith("10.0.0.9, 127.0.0.1")
    assert lower["x-forwarded-proto"] == "http" and lower["x-forwarded-prefix"] == "/fwd"
    assert lower["x-forwarded-host"].startswith("127.0.0.1:")
    for method in ("POST", "PUT", "DELETE", "HEAD"):
        r = sender.request(method, "/echo", data=b"x" * 10 if method in ("POST", "PUT") else None)
        assert r.status_code == 200 and web.seen[-1][0] == method


def test_hop_by_hop_response_headers_are_removed_and_cookies_kept_apart(
        proxy: HttpForwarder, sender: Sender) -> None:
    r = sender.request("GET", "/hop")
    assert r.content == b"hop"
    assert "X-Hop" not in r.headers and "Keep-Alive" not in r.headers
    assert r.headers["X-End"] == "kept"
    assert sorted(c.name for c in r.cookies) == ["a", "b"]


def test_a_redirect_to_the_upstream_points_at_the_relay(
    proxy: HttpForwarder, sender: Sender, relay: RelayEmulator
) -> None:
    r = sender.request("GET", "/redirect", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == f"{sender.url('')}/landing?from=redirect"
    assert r.headers["Location"].startswith(relay.namespace.replace("ws://", "http://") + "/fwd/")


def test_an_unreachable_upstream_is_a_503_naming_it(cs: str, sender: Sender) -> None:
    from tests.support.sockets import free_port
    forwarder = HttpForwarder.from_connection_string(cs, parse_http_spec(f"{HC}:http/127.0.0.1:{free_port()}"),
                                                     connect_timeout=5)
    with forwarder.start(timeout=15):
        r = sender.request("GET", "/anything")
    assert r.status_code == 503 and "upstream could not be reached" in r.reason
    assert forwarder.counters["upstream_errors"] == 1


def test_upstream_502_is_relayed_as_503_with_the_original_status(proxy: HttpForwarder, sender: Sender) -> None:
    r = sender.request("GET", "/status/502")
    assert r.status_code == 503 and r.headers["X-Upstream-Status"] == "502"
    assert sender.request("GET", "/status/418").status_code == 418


def test_bodies_both_ways_byte_exact(proxy: HttpForwarder, sender: Sender) -> None:
    body = os.urandom(5 * MB + 3)
    want = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    assert sender.request("POST", "/upload", data=body).content == want
    assert sender.request("POST", "/upload", data=b"small").content.startswith(b"5 ")
    r = sender.request("GET", "/download?size=3000001")
    assert r.content == b"".join(pattern(3000001))


def test_flask_app_behind_the_proxy(cs: str, sender: Sender) -> None:
    flask = pytest.importorskip("flask")
    from werkzeug.serving import make_server

    app = flask.Flask("upstream")

    @app.route("/login")
    def login() -> Any:
        return flask.redirect(flask.url_for("home", next="/x y"))

    @app.route("/home")
    def home() -> Any:
        return {"args": flask.request.args.to_dict(), "host": flask.request.headers.get("X-Forwarded-Host")}

    @app.route("/upload", methods=["POST"])
    def upload() -> Any:
        data = flask.request.get_data()
        return {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="test-flask", daemon=True
    )
    thread.start()
    try:
        forwarder = HttpForwarder.from_connection_string(cs, parse_http_spec(f"{HC}:http/127.0.0.1:{server.port}"))
        with forwarder.start(timeout=15):
            r = sender.request("GET", "/login", allow_redirects=False)
            assert r.status_code == 302 and r.headers["Location"].startswith("/fwd/home?next=")
            r = sender.request("GET", "/login")  # followed through the relay
            assert r.status_code == 200 and r.json()["args"] == {"next": "/x y"}
            body = os.urandom(3 * MB)
            r = sender.request("POST", "/upload", data=body)  # streamed, sent upstream chunked
            assert r.json() == {"size": len(body), "sha": hashlib.sha256(body).hexdigest()}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.timeout(900)
def test_a_1_gb_download_and_upload_stream_in_bounded_memory(proxy: HttpForwarder, sender: Sender) -> None:
    total = 1024 * MB
    with PeakRss() as down:
        r = sender.request("GET", f"/download?size={total}", stream=True, timeout=600)
        digest, size = hashlib.sha256(), 0
        for chunk in r.iter_content(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        r.close()
    want = hashlib.sha256()
    for block in pattern(total):
        want.update(block)
    assert (size, digest.hexdigest()) == (total, want.hexdigest())
    block = os.urandom(MB)

    def upload() -> Iterator[bytes]:
        for _ in range(total // MB):
            yield block

    expected = hashlib.sha256()
    for _ in range(total // MB):
        expected.update(block)
    with PeakRss() as up:
        r = sender.request("POST", "/upload", data=upload(), timeout=600)
    assert r.content == f"{total} {expected.hexdigest()}".encode()
    print(f"-H 1 GB download {down!r}; upload {up!r}")
    assert down.growth < 50 * MB, down
    assert up.growth < 50 * MB, up
    assert proxy.counters["bytes_up"] == total
    assert proxy.counters["bytes_down"] == total + len(r.content)  # the download, and the upload's answer


def test_header_rules_without_a_relay() -> None:
    from hybridconn.forward.http_rules import relay_response_headers, upstream_request_headers

    up = upstream_request_headers({"Connection": "keep-alive, X-Drop", "X-Drop": "1", "TE": "trailers",
                                   "Upgrade": "h2c", "Host": "ns", "Content-Length": "3", "Expect": "100-continue",
                                   "ServiceBusAuthorization": "SharedAccessSignature sr=x", "Accept": "*/*"},
                                  remote_address="192.0.2.1", relay_host="ns.servicebus.windows.net",
                                  proto="https", prefix="/web")
    assert up == {"Accept": "*/*", "X-Forwarded-For": "192.0.2.1", "X-Forwarded-Host": "ns.servicebus.windows.net",
                  "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/web"}
    upstream = parse_http_spec("web:http/localhost/app:8080")
    back = relay_response_headers([("Location", "http://localhost:8080/app/x"), ("Content-Length", "9"),
                                   ("Transfer-Encoding", "chunked"), ("Connection", "X-Gone"), ("X-Gone", "1"),
                                   ("Content-Location", "/app/y"), ("X-A", "1"), ("x-a", "2")],
                                  upstream, "https://ns.servicebus.windows.net/web")
    assert back == {"Location": "https://ns.servicebus.windows.net/web/x", "Content-Location": "/web/y", "X-A": "1, 2"}
    # not the upstream: left alone
    assert relay_response_headers([("Location", "https://login.example/x")], upstream, "https://ns/web") == {
        "Location": "https://login.example/x"}
    assert relay_response_headers([("Location", "/elsewhere")], upstream, "https://ns/web") == {
        "Location": "/elsewhere"
    }


def test_cli_h_relays_to_a_web_server_and_stops_on_sigterm(cs: str, web: Upstream, sender: Sender) -> None:
    import signal
    import subprocess
    import sys

    env = dict(os.environ, HYBRIDCONN_CONNECTION_STRING=cs, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridconn", "forward", "-H", f"{HC}:http/127.0.0.1/app:{web.port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert b"forwarding HTTP" in line, line + (process.stderr.read() if process.poll() is not None else b"")
        r = sender.request("GET", "/echo/cli?x=1")
        assert r.status_code == 200 and json.loads(r.content)["path"] == "/app/echo/cli?x=1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
