"""End to end: Django and Flask served by serve_wsgi through a listener on the relay emulator.

Requests are plain ``requests`` calls to the emulator's HTTP address, signed
with a ServiceBusAuthorization header, as any HTTP client would send them.
Every request also passes through wsgiref's validator.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Dict, Iterator, Tuple
from wsgiref.validate import validator

import pytest
import requests

import hybridconn
from hybridconn.addresses import http_url, token_audience
from hybridconn.auth import ConnectionString, generate_sas_token

pytestmark = pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning")

BIG_SIZE = 200 * 1024
TIMEOUT = 30


class Site:
    """A served app: where it is and a signed session to call it with."""

    def __init__(self, framework: str, base: str, session: requests.Session) -> None:
        self.framework = framework
        self.base = base
        self.session = session
        self.slash = "/" if framework == "django" else ""

    def url(self, route: str) -> str:
        return f"{self.base}/{route}{self.slash if route else ''}"

    def get(self, route: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(route), timeout=TIMEOUT, **kwargs)

    def post(self, route: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(route), timeout=TIMEOUT, **kwargs)


@pytest.fixture(params=["django", "flask"])
def site(request: pytest.FixtureRequest, relay: Any) -> Iterator[Site]:
    app = request.getfixturevalue("django_application" if request.param == "django" else "flask_application")
    connection_string = relay.connection_string("hc1")
    connection = ConnectionString.parse(connection_string)
    listener = hybridconn.HybridConnectionListener.from_connection_string(connection_string, max_workers=4)
    hybridconn.serve_wsgi(validator(app), listener)
    listener.open(timeout=TIMEOUT)
    session = requests.Session()
    try:
        token = generate_sas_token(
            token_audience(connection.namespace, "hc1"),
            connection.shared_access_key_name,  # type: ignore[arg-type]
            connection.shared_access_key,  # type: ignore[arg-type]
        )
        session.headers["ServiceBusAuthorization"] = token
        yield Site(request.param, http_url(connection.namespace, "hc1"), session)
    finally:
        session.close()
        listener.close(timeout=10)


def test_get_with_query(site: Site) -> None:
    response = site.get("", params={"name": "relay"})
    assert response.status_code == 200
    assert response.text == f"hello relay from {site.framework}"


def test_the_app_sees_where_it_is_mounted(site: Site) -> None:
    response = site.get("environ", params={"a": "1"}, headers={"User-Agent": "relay-test"})
    info = response.json()
    assert info["script_name"] == "/hc1"
    assert info["path"] == "/hc1/environ" + site.slash
    assert info["scheme"] == "http"  # the emulator is plain HTTP
    assert info["user_agent"] == "relay-test"
    absolute = info["absolute"] if site.framework == "django" else info["url"]
    assert absolute == site.url("environ") + "?a=1"


def test_post_form(site: Site) -> None:
    response = site.post("form", data=[("color", "red"), ("color", "blue"), ("note", "café")])
    assert response.status_code == 200
    assert response.json() == {"color": ["red", "blue"], "note": ["café"]}


def test_post_json(site: Site) -> None:
    payload = {"items": list(range(10)), "text": "ünïcode"}
    response = site.post("json", json=payload)
    assert response.status_code in (200, 201)
    assert response.json() == {"method": "POST", "received": payload}


def test_file_upload_over_64kb_goes_by_rendezvous(site: Site) -> None:
    content = bytes(range(256)) * 600  # 153,600 bytes
    response = site.post("upload", files={"file": ("data.bin", content, "application/octet-stream")})
    assert response.status_code == 200
    result = response.json()
    assert (result["name"], result["size"]) == ("data.bin", len(content))
    assert result["sha256"] == hashlib.sha256(content).hexdigest()


def test_large_response_over_64kb_goes_by_rendezvous(site: Site) -> None:
    response = site.get("big")
    assert response.status_code == 200
    assert response.content == bytes(i % 251 for i in range(BIG_SIZE))


def test_streaming_response(site: Site) -> None:
    response = site.get("stream", params={"count": "50"})
    assert response.status_code == 200
    assert response.text == "".join(f"line {n}\n" for n in range(50))


def test_redirect_is_followed_under_the_hybrid_connection(site: Site) -> None:
    response = site.get("redirect", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] in ("/hc1/", site.base + "/")
    followed = site.get("redirect")
    assert followed.status_code == 200
    assert followed.text == f"hello world from {site.framework}"


def test_cookies_round_trip(site: Site) -> None:
    response = site.get("cookie/set", params={"flavor": "ginger"})
    assert response.status_code == 200
    assert site.session.cookies.get("flavor") == "ginger"
    assert site.session.cookies.get("visits") == "1"
    response = site.get("cookie/get")
    assert response.json() == {"flavor": "ginger", "visits": "1"}


def test_404_from_the_app(site: Site) -> None:
    response = site.get("no/such/page")
    assert response.status_code == 404


def test_app_that_raises_gives_500_without_details(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    response = site.get("boom")
    assert response.status_code == 500
    assert "secret-detail-42" not in response.text
    assert "secret-detail-42" not in json.dumps(dict(response.headers))


def test_hybridconn_client_request_reaches_the_app(relay: Any, site: Site) -> None:
    client = hybridconn.HybridConnectionClient.from_connection_string(relay.connection_string("hc1"))
    try:
        response = client.request("POST", "/json" + site.slash, json={"via": "client"}, timeout=TIMEOUT)
    finally:
        client.close()
    assert response.status_code in (200, 201)
    assert response.json() == {"method": "POST", "received": {"via": "client"}}


def raw_app(environ: Dict[str, Any], start_response: Any) -> Any:
    """A bare WSGI app reporting how its request arrived; ``/generate`` streams a generator."""
    if environ["PATH_INFO"] == "/generate":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([n]) * 10_000 for n in range(30))
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    report = {
        "via_rendezvous": environ["hybridconn.via_rendezvous"],
        "size": len(body),
        "path_info": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(report).encode()]


@pytest.fixture
def raw_site(relay: Any) -> Iterator[Tuple[str, requests.Session]]:
    connection_string = relay.connection_string("hc1")
    connection = ConnectionString.parse(connection_string)
    listener = hybridconn.HybridConnectionListener.from_connection_string(connection_string, max_workers=8)
    hybridconn.serve_wsgi(validator(raw_app), listener)
    listener.open(timeout=TIMEOUT)
    session = requests.Session()
    try:
        session.headers["ServiceBusAuthorization"] = generate_sas_token(
            token_audience(connection.namespace, "hc1"),
            connection.shared_access_key_name,  # type: ignore[arg-type]
            connection.shared_access_key,  # type: ignore[arg-type]
        )
        yield http_url(connection.namespace, "hc1"), session
    finally:
        session.close()
        listener.close(timeout=10)


def test_small_request_on_the_control_channel_large_by_rendezvous(raw_site: Tuple[str, requests.Session]) -> None:
    base, session = raw_site
    small = session.post(base + "/echo?x=1", data=b"a" * 100, timeout=TIMEOUT).json()
    assert small == {"via_rendezvous": False, "size": 100, "path_info": "/echo", "query": "x=1"}
    large = session.post(base + "/echo", data=b"b" * 100_000, timeout=TIMEOUT).json()
    assert (large["via_rendezvous"], large["size"]) == (True, 100_000)


def test_generator_response_is_streamed_whole(raw_site: Tuple[str, requests.Session]) -> None:
    base, session = raw_site
    response = session.get(base + "/generate", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == b"".join(bytes([n]) * 10_000 for n in range(30))


def test_concurrent_requests_are_served_in_parallel_threads(raw_site: Tuple[str, requests.Session]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base, _ = raw_site
    headers = {"ServiceBusAuthorization": raw_site[1].headers["ServiceBusAuthorization"]}

    def one(n: int) -> Dict[str, Any]:
        with requests.Session() as session:
            return session.post(f"{base}/n{n}?i={n}", data=b"x" * n, headers=headers, timeout=TIMEOUT).json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert [(r["path_info"], r["query"], r["size"]) for r in results] == [(f"/n{n}", f"i={n}", n) for n in range(16)]
