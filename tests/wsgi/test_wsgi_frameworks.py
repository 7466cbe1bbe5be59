"""A real Django project and a real Flask app, called through build_environ/call_wsgi and wsgiref's validator."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Dict, Tuple

import pytest
import requests
from tests.support.wsgi_requests import Caller

pytestmark = pytest.mark.filterwarnings("error::wsgiref.validate.WSGIWarning")

# Django routes end in "/" (APPEND_SLASH), Flask's do not.
ROUTES: Dict[str, Dict[str, str]] = {
    "django": {
        name: f"/{name}/" for name in ("form", "json", "upload", "redirect", "boom", "big", "stream", "environ")
    },
    "flask": {name: f"/{name}" for name in ("form", "json", "upload", "redirect", "boom", "big", "stream", "environ")},
}
for framework, slash in (("django", "/"), ("flask", "")):
    ROUTES[framework]["cookie-set"] = "/cookie/set" + slash
    ROUTES[framework]["cookie-get"] = "/cookie/get" + slash

BIG_SIZE = 200 * 1024


@pytest.fixture(params=["django", "flask"])
def framework(request: pytest.FixtureRequest) -> Tuple[str, Any]:
    fixture = "django_application" if request.param == "django" else "flask_application"
    return request.param, request.getfixturevalue(fixture)


def encode_multipart(files: Dict[str, Any], data: Dict[str, str]) -> Tuple[bytes, str]:
    prepared = requests.Request("POST", "http://example.invalid/", files=files, data=data).prepare()
    return prepared.body, prepared.headers["Content-Type"]  # type: ignore[return-value]


def test_get_with_query(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(app, "GET", "/", "name=relay")
    assert response.status == 200
    assert body == f"hello relay from {name}".encode()
    assert response.headers["Content-Type"].startswith("text/plain")  # type: ignore[index]


def test_app_sees_mount_point_and_absolute_url(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    suffix = ROUTES[name]["environ"]
    response, body = call(app, "GET", suffix, "a=1", {"User-Agent": "pytest"}, namespace="ws://127.0.0.1:9350")
    info = json.loads(body)
    assert info["script_name"] == "/hc1"
    assert info["path_info"] == suffix
    assert info["path"] == "/hc1" + suffix
    assert info["scheme"] == "http"
    assert info["host"] == "127.0.0.1:9350"
    assert info["user_agent"] == "pytest"
    absolute = info["absolute"] if name == "django" else info["url"]
    assert absolute == f"http://127.0.0.1:9350/hc1{suffix}?a=1"


def test_https_namespace_gives_https_urls(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(app, "GET", ROUTES[name]["environ"], namespace="contoso.servicebus.windows.net")
    info = json.loads(body)
    assert info["scheme"] == "https"
    assert info["host"] == "contoso.servicebus.windows.net"


def test_post_form(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(
        app,
        "POST",
        ROUTES[name]["form"],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"color=red&color=blue&size=L&note=caf%C3%A9",
    )
    assert response.status == 200
    assert json.loads(body) == {"color": ["red", "blue"], "size": ["L"], "note": ["café"]}


def test_post_json(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    payload = {"items": [1, 2, 3], "text": "ünïcode"}
    response, body = call(
        app,
        "POST",
        ROUTES[name]["json"],
        headers={"Content-Type": "application/json"},
        body=json.dumps(payload).encode(),
    )
    assert response.status in (200, 201)
    assert json.loads(body) == {"method": "POST", "received": payload}


def test_file_upload_over_64kb(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    content = bytes(range(256)) * 600  # 153,600 bytes: bigger than the control channel and Django's memory limit
    multipart, content_type = encode_multipart(
        {"file": ("data.bin", content, "application/octet-stream")}, {"note": "hi"}
    )
    response, body = call(app, "POST", ROUTES[name]["upload"], headers={"Content-Type": content_type}, body=multipart)
    assert response.status == 200
    result = json.loads(body)
    assert result["name"] == "data.bin"
    assert result["size"] == len(content)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()


def test_redirect_stays_under_the_hybrid_connection(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, _ = call(app, "GET", ROUTES[name]["redirect"])
    assert response.status == 302
    assert response.headers["Location"] in ("/hc1/", "http://127.0.0.1:9350/hc1/")  # type: ignore[index]


def test_django_appends_slash_with_a_redirect(django_application: Any, call: Caller) -> None:
    response, _ = call(django_application, "GET", "/json", "x=1")
    assert response.status == 301
    assert response.headers["Location"] == "/hc1/json/?x=1"  # type: ignore[index]


def test_cookies_set_and_read(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, _ = call(app, "GET", ROUTES[name]["cookie-set"], "flavor=ginger")
    assert response.status == 200
    cookies = [value for key, value in response.headers.items() if key.lower() == "set-cookie"]  # type: ignore[union-attr]
    assert len(cookies) == 2  # never folded into one value: each its own key, hence its own header line
    assert sorted(cookie.split(";")[0] for cookie in cookies) == ["flavor=ginger", "visits=1"]
    response, body = call(app, "GET", ROUTES[name]["cookie-get"], headers={"Cookie": "flavor=ginger; other=1"})
    assert json.loads(body) == {"flavor": "ginger", "other": "1"}


def test_404_from_the_app(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(app, "GET", "/no/such/page/")
    assert response.status == 404


def test_app_that_raises_gives_500_without_the_exception_text(
    framework: Tuple[str, Any], call: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    name, app = framework
    caplog.set_level(logging.ERROR)
    response, body = call(app, "GET", ROUTES[name]["boom"])
    assert response.status == 500
    assert b"secret-detail-42" not in body
    assert "secret-detail-42" not in json.dumps(response.headers)


def test_large_response_is_streamed(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(app, "GET", ROUTES[name]["big"])
    assert response.status == 200
    assert response.is_streamed  # over 64 kB: the listener sends it by rendezvous
    assert body == bytes(i % 251 for i in range(BIG_SIZE))


def test_streaming_response(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, body = call(app, "GET", ROUTES[name]["stream"], "count=3")
    assert response.status == 200
    assert body == b"line 0\nline 1\nline 2\n"


def test_head_and_unknown_methods(framework: Tuple[str, Any], call: Caller) -> None:
    name, app = framework
    response, _ = call(app, "HEAD", "/")
    assert response.status == 200
    response, _ = call(app, "PUT", ROUTES[name]["form"], headers={"Content-Type": "text/plain"}, body=b"x")
    assert response.status == 405
