"""The access log, parsed field by field; its JSON form; no secret in any line; the error log's level."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Callable, List

import requests

from hybridconn.auth import ConnectionString
from tests.serve.conftest import Served
from tests.support.plain_clients import Sender

Serve = Callable[..., Served]

# The default format: combined, then request id, duration and how the exchange travelled.
COMBINED = re.compile(
    r'^(?P<h>\S+) (?P<l>\S+) (?P<u>\S+) \[(?P<t>[^\]]+)\] "(?P<method>\S+) (?P<target>\S+) (?P<proto>HTTP/1\.1)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<request_id>\S+) '
    r'(?P<ms>\d+)ms (?P<via>control|rendezvous)$'
)


def _lines(path: Path, count: int, timeout: float = 30.0) -> List[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"the access log has {len(lines)} lines, not {count}")


def test_access_log_lines_carry_every_field(serve: Serve, sender: Sender, tmp_path: Path) -> None:
    log_path = tmp_path / "access.log"
    process = serve("serve_app", "--access-logfile", str(log_path))
    process.online()
    with requests.Session() as session:
        ids = [sender.request("GET", "/id?x=1", session=session, headers={"User-Agent": "probe/1.0",
                                                                          "Referer": "https://example.test/from"})]
        big = sender.request("GET", "/missing-but-fine", session=session)
        boom = sender.request("GET", "/boom", session=session)
    lines = _lines(log_path, 3)
    parsed = [COMBINED.match(line) for line in lines]
    assert all(parsed), lines
    first = parsed[0].groupdict()  # type: ignore[union-attr]
    assert first["h"] == "127.0.0.1"  # the sender's address, from the relay's remoteEndpoint
    assert (first["l"], first["u"]) == ("-", "-")
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", first["t"])
    assert (first["method"], first["target"], first["status"]) == ("GET", "/hc1/id?x=1", "200")
    assert first["bytes"] == str(len(ids[0].content))
    assert (first["referer"], first["agent"]) == ("https://example.test/from", "probe/1.0")
    assert first["request_id"] == ids[0].text  # the id the application saw in its environ
    assert first["via"] == "control" and int(first["ms"]) >= 0
    assert parsed[1].group("status") == str(big.status_code)  # type: ignore[union-attr]
    assert boom.status_code == 500 and parsed[2].group("status") == "500"  # type: ignore[union-attr]
    assert sender.request("GET", "/addr").text == "127.0.0.1"  # the application sees it as REMOTE_ADDR too
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0


def test_json_lines_and_a_custom_format(serve: Serve, sender: Sender, tmp_path: Path) -> None:
    json_path, custom_path = tmp_path / "json.log", tmp_path / "custom.log"
    first = serve("serve_app", "--access-logfile", str(json_path), "--log-format", "json")
    first.online()
    sender.request("POST", "/anything?q=2", data=b"x" * 10)
    document = json.loads(_lines(json_path, 1)[0])
    assert {k: document[k] for k in ("method", "target", "status", "via", "hybrid_connection")} == {
        "method": "POST", "target": "/hc1/anything?q=2", "status": 200, "via": "control", "hybrid_connection": "hc1"}
    assert document["remote_addr"] == "127.0.0.1" and document["duration_ms"] >= 0 and document["delivered"] is True
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0
    second = serve("serve_app", "--access-logfile", str(custom_path),
                   "--access-logformat", "%(m)s %(U)s %(q)s %(s)s %({x-probe}i)s %(D)s %(p)s")
    second.online()
    sender.request("GET", "/a/b?c=d", headers={"X-Probe": "yes"})
    fields = _lines(custom_path, 1)[0].split(" ")
    assert fields[:5] == ["GET", "/hc1/a/b", "c=d", "200", "yes"]
    assert fields[5].isdigit() and re.fullmatch(r"<\d+>", fields[6])


def test_no_secret_reaches_the_access_or_error_log(serve: Serve, sender: Sender, tmp_path: Path, relay: object) -> None:
    log_path = tmp_path / "access.log"
    process = serve("serve_app", "--access-logfile", str(log_path), "--log-level", "debug")
    process.online()
    token = sender.token()
    signature = re.search(r"sig=([^&]+)", token).group(1)  # type: ignore[union-attr]
    key = ConnectionString.parse(relay.connection_string("hc1")).shared_access_key  # type: ignore[attr-defined]
    # A token in the query (the relay strips sb-hc-* itself), other sb-hc-* values, tokens in headers.
    response = requests.get(sender.url(f"/id?sb-hc-token={requests.utils.quote(token)}&sb-hc-extra=hidden-value&ok=1"),
                            headers={"Referer": f"https://x.test/?sb-hc-token={signature}&sig={signature}",
                                     "User-Agent": f"agent {token}"}, timeout=30)
    assert response.status_code == 200
    sender.request("GET", "/plain", headers={"Authorization": token})
    text = "\n".join(_lines(log_path, 2))
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0
    everything = text + "\n".join(process.lines)
    for secret in (signature, requests.utils.unquote(signature), key, "hidden-value"):
        assert secret not in everything, secret
    assert "ok=1" in text  # the application's own query is logged


def test_the_error_log_goes_to_a_file_at_its_level(serve: Serve, sender: Sender, tmp_path: Path) -> None:
    errors = tmp_path / "error.log"
    process = serve("serve_app", "--error-logfile", str(errors), "--log-level", "warning")
    process.online()
    sender.request("GET", "/boom")
    process.signal(signal.SIGTERM)
    assert process.wait(30) == 0
    text = errors.read_text()
    assert "[ERROR]" in text and "WSGI application failed" in text
    assert "[INFO]" not in text  # below the level
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\]", text, re.M)
