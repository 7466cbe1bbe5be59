"""`hybridconn serve` as a user runs it: a real process, an embedded emulator, curl-like calls, Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
from typing import Dict, Iterator, List

import pytest
import requests

import hybridconn
from tests.support.processes import ChildProcess, pasted

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_TIMEOUT = 60


class ServeProcess(ChildProcess):
    """``python -m hybridconn serve SPEC`` in tests/wsgi, with its announcement parsed."""

    def __init__(self, spec: str, *extra: str) -> None:
        env = dict(os.environ)
        env.pop("HYBRIDCONN_CONNECTION_STRING", None)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        super().__init__(["-m", "hybridconn", "serve", spec, *extra], env, cwd=HERE)

    def announcement(self) -> Dict[str, str]:
        """The URL, the curl command's header and the connection string, once online."""
        if not self.wait_until(lambda: any(line.strip().startswith("Ctrl-C") for line in self.lines), STARTUP_TIMEOUT):
            self.stop()
            raise AssertionError(f"serve did not come online; stderr: {self.stderr}")
        found: Dict[str, str] = {}
        for line in self.lines:
            text = line.strip()
            if text.startswith("URL: "):
                found["url"] = text[len("URL: ") :]
            elif text.startswith("Try it: "):
                found["curl"] = text[len("Try it: ") :]
            elif text.startswith("Connection string: "):
                found["connection_string"] = text[len("Connection string: ") :]
            elif text.startswith("Ctrl-C"):
                found["stop"] = text
                break
        return found


@pytest.fixture
def serve_process() -> Iterator[List[ServeProcess]]:
    started: List[ServeProcess] = []
    yield started
    for process in started:
        process.stop()


def curl_to_requests(curl: str) -> Dict[str, str]:
    """The header and URL of the printed ``curl -H 'Name: value' URL`` command."""
    words = shlex.split(curl)
    assert words[0] == "curl" and words[1] == "-H"
    name, _, value = words[2].partition(": ")
    return {"name": name, "value": value, "url": words[3]}


@pytest.mark.parametrize(
    "spec, path, expected",
    [
        ("wsgi_flask_app:app", "", b"hello world from flask"),
        ("django_project.wsgi:application", "", b"hello world from django"),
    ],
)
def test_serve_prints_a_working_curl_command_and_stops_on_ctrl_c(
    serve_process: List[ServeProcess], spec: str, path: str, expected: bytes
) -> None:
    process = ServeProcess(spec)
    serve_process.append(process)
    info = process.announcement()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/hc1/", info["url"])
    assert "UseDevelopmentEmulator=true" in pasted(info["connection_string"])  # ready to paste into a shell
    curl = curl_to_requests(info["curl"])
    assert curl["name"] == "ServiceBusAuthorization"
    assert curl["value"].startswith("SharedAccessSignature ")
    assert curl["url"] == info["url"]
    with requests.Session() as session:
        response = session.get(curl["url"] + path, headers={curl["name"]: curl["value"]}, timeout=30)
        assert (response.status_code, response.content) == (200, expected)
        unsigned = session.get(curl["url"], timeout=30)
        assert unsigned.status_code == 401
    assert process.interrupt() == 0


def test_serve_on_a_given_namespace_prints_no_token(serve_process: List[ServeProcess]) -> None:
    from hybridconn.auth import ConnectionString
    from hybridconn.emulator import RelayEmulator

    with RelayEmulator(hybrid_connections=["site"]) as relay:
        connection_string = relay.connection_string("site")
        process = ServeProcess("wsgi_flask_app:app", "--connection-string", connection_string, "--max-workers", "2")
        serve_process.append(process)
        info = process.announcement()
        connection = ConnectionString.parse(connection_string)
        assert info["url"] == f"http://{connection.namespace.authority}/site/"
        # A real namespace's token is a credential: the command shows how to make one instead.
        assert info["curl"] == f'curl -H "ServiceBusAuthorization: $(hybridconn token site)" {info["url"]}'
        assert "connection_string" not in info
        assert "SharedAccessKey" not in "".join(process.stderr)
        client = hybridconn.HybridConnectionClient.from_connection_string(connection_string)
        try:
            response = client.request("GET", "/", params={"name": "namespace"}, timeout=30)
        finally:
            client.close()
        assert (response.status_code, response.text) == (200, "hello namespace from flask")
        assert process.interrupt() == 0
