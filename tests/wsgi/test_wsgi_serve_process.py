"""`hybridconn serve` as a user runs it: a real process, an embedded emulator, curl-like calls, Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, Iterator, List

import pytest
import requests

import hybridconn

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_TIMEOUT = 60


class ServeProcess:
    """``python -m hybridconn serve SPEC`` in tests/wsgi, with its announcement parsed."""

    def __init__(self, spec: str, *extra: str) -> None:
        env = dict(os.environ)
        env.pop("HYBRIDCONN_CONNECTION_STRING", None)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hybridconn", "serve", spec, *extra],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stderr: List[str] = []
        self.pumps = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True),
        ]
        for pump in self.pumps:
            pump.start()

    @staticmethod
    def _pump(stream: object, sink: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink(line)  # type: ignore[operator]

    def announcement(self) -> Dict[str, str]:
        """The URL, the curl command's header and the connection string, once online."""
        found: Dict[str, str] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "stop" not in found:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise AssertionError(f"serve did not come online; stderr: {''.join(self.stderr)}") from None
                continue
            text = line.strip()
            if text.startswith("URL: "):
                found["url"] = text[len("URL: ") :]
            elif text.startswith("Try it: "):
                found["curl"] = text[len("Try it: ") :]
            elif text.startswith("Connection string: "):
                found["connection_string"] = text[len("Connection string: ") :]
            elif text.startswith("Ctrl-C"):
                found["stop"] = text
        return found

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pump in self.pumps:  # the pipes reach EOF once the process is gone
            pump.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve_process() -> Iterator[List[ServeProcess]]:
    started: List[ServeProcess] = []
    yield started
    for process in started:
        process.close()


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
    assert "UseDevelopmentEmulator=true" in info["connection_string"]
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
