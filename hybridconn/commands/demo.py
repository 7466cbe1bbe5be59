"""``hybridconn demo``: a listener and a sender talk through the relay, and a short report says how it went.

With no connection string the relay is an emulator started in this process,
so the demo runs offline in a second or two. With ``--connection-string`` or
``$HYBRIDCONN_CONNECTION_STRING`` the same steps run against that namespace.

The steps: HTTP requests small enough for the control channel, one over
64 kB each way so the rendezvous path runs, and WebSocket text and binary
messages echoed by the listener. Exit code 0 when every step went through.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

from ..exceptions import HybridConnectionError
from ..protocol import CONTROL_CHANNEL_BODY_LIMIT
from ._common import add_connection_string
from ._demo_app import DemoApp
from ._relay import add_path, relay_or_emulator

NAME = "demo"
HELP = "send HTTP requests and WebSocket messages through the relay (an embedded emulator by default) and report"

DEMO_PATH = "demo"
LARGE_SIZE = 200 * 1024  # well over the 64 kB control-channel limit, so both directions use rendezvous
WS_ROUND_TRIPS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_string(parser)
    add_path(parser, DEMO_PATH)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds each step may take (default: 30)")
    parser.add_argument(
        "--large", type=int, default=LARGE_SIZE, help=f"bytes in the large request and response (default: {LARGE_SIZE})"
    )


@dataclass
class Step:
    """One line of the report."""

    name: str
    ok: bool = False
    route: str = ""
    seconds: Optional[float] = None
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        took = _ms(self.seconds) if self.seconds is not None else ""
        text = f"  {mark} {self.name:<34} {self.route:<36} {took:>9}"
        return text + (f"  {self.detail}" if self.detail else "")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _size(n: int) -> str:
    return f"{n // 1024} kB" if n >= 1024 else f"{n} B"


def _route(request_rendezvous: Optional[bool], response_bytes: int) -> str:
    """Which path each direction took: the listener saw the request's, the 64 kB rule decides the response's."""
    request = "?" if request_rendezvous is None else "rendezvous" if request_rendezvous else "control channel"
    response = "rendezvous" if response_bytes > CONTROL_CHANNEL_BODY_LIMIT else "control channel"
    if request == response:
        return request
    return f"req {request}, resp {response}"


class Demo:
    """Runs the steps against one connection string and collects the report."""

    def __init__(
        self, connection_string: str, path: Optional[str], timeout: float, large: int, **options: Any
    ) -> None:
        self.connection_string = connection_string
        self.options = options  # for the listener and the client (credential)
        self.path = path
        self.timeout = timeout
        self.large = large
        self.app: DemoApp = DemoApp()
        self.steps: List[Step] = []

    def _step(self, name: str, action: Callable[[Step], None]) -> Step:
        step = Step(name)
        started = time.perf_counter()
        try:
            action(step)
        except (HybridConnectionError, OSError, AssertionError, ValueError) as exc:
            step.ok = False
            step.detail = f"{type(exc).__name__}: {exc}"
        else:
            step.ok = True
        if step.seconds is None:
            step.seconds = time.perf_counter() - started
        self.steps.append(step)
        return step

    def run(self) -> List[Step]:
        import hybridconn

        listener = hybridconn.HybridConnectionListener.from_connection_string(
            self.connection_string, path=self.path, **self.options
        )
        self.app.install(listener)
        client = hybridconn.HybridConnectionClient.from_connection_string(
            self.connection_string, path=self.path, **self.options
        )

        def open_listener(step: Step) -> None:
            step.route = "control channel (WebSocket)"
            step.detail = self.app.kind
            listener.open(timeout=self.timeout)

        try:
            if not self._step("listener online", open_listener).ok:
                return self.steps
            self._http_steps(client)
            self._websocket_steps(client)
        finally:
            client.close()
            listener.close(timeout=10)
        return self.steps

    # -- HTTP

    def _request(self, client: Any, step: Step, method: str, suffix: str, data: Optional[bytes] = None) -> Any:
        started = time.perf_counter()
        response = client.request(method, suffix, data=data, timeout=self.timeout)
        step.seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise AssertionError(f"HTTP {response.status_code} {response.reason}: {response.text[:120]!r}")
        return response

    def _http_steps(self, client: Any) -> None:
        def hello(step: Step) -> None:
            response = self._request(client, step, "GET", "/hello?name=demo")
            assert response.text == "hello demo", f"unexpected body {response.text[:60]!r}"
            step.route = _route(self.app.last_rendezvous, len(response.content))

        def echo_small(step: Step) -> None:
            body = os.urandom(1024)
            response = self._request(client, step, "POST", "/echo", data=body)
            assert response.content == body, "echoed body differs"
            step.route = _route(self.app.last_rendezvous, len(response.content))

        def echo_large(step: Step) -> None:
            body = os.urandom(self.large)
            response = self._request(client, step, "POST", "/echo", data=body)
            assert response.content == body, f"echoed body differs ({len(response.content)} of {len(body)} bytes)"
            step.route = _route(self.app.last_rendezvous, len(response.content))

        def download_large(step: Step) -> None:
            response = self._request(client, step, "GET", f"/bytes?size={self.large}")
            assert len(response.content) == self.large, f"got {len(response.content)} of {self.large} bytes"
            step.route = _route(self.app.last_rendezvous, len(response.content))

        self._step("HTTP GET /hello", hello)
        self._step("HTTP POST /echo (1 kB)", echo_small)
        self._step(f"HTTP GET /bytes ({_size(self.large)} response)", download_large)
        self._step(f"HTTP POST /echo ({_size(self.large)})", echo_large)

    # -- WebSocket

    def _websocket_steps(self, client: Any) -> None:
        conn = None

        def connect(step: Step) -> None:
            nonlocal conn
            step.route = "rendezvous (WebSocket)"
            conn = client.connect(timeout=self.timeout)

        if not self._step("WebSocket connect", connect).ok or conn is None:
            return
        try:
            socket = conn

            def text_round_trips(step: Step) -> None:
                step.route = "rendezvous (WebSocket)"
                times = []
                for index in range(WS_ROUND_TRIPS):
                    message = f"message {index}"
                    started = time.perf_counter()
                    socket.send(message)
                    reply = socket.recv(timeout=self.timeout)
                    times.append(time.perf_counter() - started)
                    assert reply == message, f"echo of {message!r} came back as {reply!r:.60}"
                step.seconds = statistics.median(times)
                step.detail = f"median of {WS_ROUND_TRIPS}, fastest {_ms(min(times))}"

            def binary_echo(step: Step) -> None:
                step.route = "rendezvous (WebSocket)"
                payload = os.urandom(self.large)
                started = time.perf_counter()
                socket.send(payload)
                reply = socket.recv(timeout=self.timeout)
                step.seconds = time.perf_counter() - started
                assert reply == payload, "binary echo differs"

            def close(step: Step) -> None:
                step.route = "rendezvous (WebSocket)"
                socket.close(timeout=self.timeout)
                assert socket.close_code == 1000, f"closed with code {socket.close_code}"

            self._step(f"WebSocket text x{WS_ROUND_TRIPS}", text_round_trips)
            self._step(f"WebSocket binary ({_size(self.large)})", binary_echo)
            self._step("WebSocket close", close)
        finally:
            if not conn.closed:
                conn.abort()


def run(args: argparse.Namespace) -> int:
    if args.large <= CONTROL_CHANNEL_BODY_LIMIT:
        print(
            f"hybridconn demo: note: --large {args.large} fits the control channel; rendezvous will not run",
            file=sys.stderr,
        )
    started = time.perf_counter()
    with relay_or_emulator(args, DEMO_PATH) as relay:
        print(f"hybridconn demo: {relay.description}")
        steps = Demo(relay.connection_string, relay.path, args.timeout, args.large, **relay.options).run()
    for step in steps:
        print(step.line())
    failed = [step for step in steps if not step.ok]
    took = time.perf_counter() - started
    if failed:
        print(f"{len(failed)} of {len(steps)} steps failed ({took:.1f} s)")
        return 1
    print(f"all {len(steps)} steps went through the relay ({took:.1f} s)")
    return 0
