"""Secrets: a full scenario at DEBUG everywhere (hybridconn, the emulator, urllib3, websocket-client
with its trace on) leaves no key, signature or token in any log line, exception message, traceback
or repr. TLS verification is on by default against the emulator's self-signed certificate."""

from __future__ import annotations

import logging
import os
import time
import traceback
from base64 import b64encode
from typing import Iterator, List, Set, Tuple
from urllib.parse import quote

import pytest
import websocket

from hybridconn import (
    AuthenticationError, HybridConnectionClient, HybridConnectionError, HybridConnectionListener,
    RelayConnectionError, RelayedRequest, RelayedResponse,
)
from hybridconn.auth import ConnectionString, SharedAccessKeyTokenProvider, parse_sas_token
from hybridconn.emulator import RelayEmulator
from tests.support.endpoints import echo_connection


KEY = b64encode(os.urandom(32)).decode()
WRONG_KEY = b64encode(os.urandom(32)).decode()
LOGGERS = ("", "hybridconn", "hybridconn.emulator", "urllib3", "websocket", "requests")


class _Capture(logging.Handler):
    """Keeps every record fully formatted, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _Recording:
    """A token provider that remembers every token it handed out (to know what to search for)."""

    def __init__(self, key_name: str, key: str, ttl: float, seen: Set[str]) -> None:
        self._inner = SharedAccessKeyTokenProvider(key_name, key, ttl=ttl)
        self._seen = seen

    def __call__(self, audience: str) -> Tuple[str, float]:
        token, expires_on = self._inner.get_token(audience)
        self._seen.add(token)
        return token, expires_on


@pytest.fixture
def capture() -> Iterator[_Capture]:
    handler = _Capture()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    websocket.enableTrace(True, handler=handler)
    try:
        yield handler
    finally:
        websocket.enableTrace(False)
        ws_logger = logging.getLogger("websocket")
        for existing in list(ws_logger.handlers):
            if existing is handler:
                ws_logger.removeHandler(existing)
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _secrets(tokens: Set[str]) -> List[str]:
    found = {KEY, WRONG_KEY, quote(KEY, safe=""), quote(WRONG_KEY, safe="")}
    for token in tokens:
        parsed = parse_sas_token(token)
        found |= {token, quote(token, safe=""), parsed.signature, quote(parsed.signature, safe="")}
    return sorted(found, key=len)


def _describe(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(type(exc), exc, exc.__traceback__)])


def test_full_scenario_at_debug_leaks_no_secret(capture: _Capture) -> None:
    tokens: Set[str] = set()
    texts: List[str] = []  # exception messages, tracebacks and reprs met on the way
    with RelayEmulator(hybrid_connections=["hc1", "hc2"], keys={"app": KEY}) as relay:
        cs = ConnectionString.parse(relay.connection_string("hc1", "app"))
        listener = HybridConnectionListener(cs.namespace, "hc1", _Recording("app", KEY, 4, tokens), ping_interval=0.5,
                                            backoff=(0, 0.2))
        texts.append(repr(listener))

        @listener.on_request
        def handle(req: RelayedRequest) -> RelayedResponse:
            texts.append(repr(req))
            texts.append(repr(dict(req.headers)))
            if req.path == "/crash":
                raise RuntimeError("handler bug")
            return RelayedResponse(body=req.body)

        listener.on_connection = echo_connection
        clients = [
            HybridConnectionClient(cs.namespace, "hc1", _Recording("app", KEY, 300, tokens)),
            HybridConnectionClient(cs.namespace, "hc1", _Recording("app", KEY, 300, tokens), token_in_query=True),
        ]
        try:
            listener.open(timeout=15)
            for client in clients:
                texts.append(repr(client))
                assert client.request("POST", "/small?a=1", data=b"abc").content == b"abc"
                big = os.urandom(100_000)
                assert client.request("POST", "/big", data=big).content == big  # by rendezvous
                assert client.request("GET", "/crash").status_code == 500
                with client.connect(timeout=10) as conn:
                    texts.append(repr(conn))
                    conn.send("hello")
                    assert conn.recv(timeout=10) == "hello"
            # the token is renewed on the control channel (4 s tokens)
            deadline = time.monotonic() + 20
            while listener.stats["renewals"] < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert listener.stats["renewals"] >= 1
            # a dropped control channel, a reconnect
            relay.drop_control_channels("hc1")
            assert relay.wait_for_listeners("hc1", 1, timeout=15)
            # failures: wrong keys on both sides, no listener, all three token places
            for in_query in (False, True):
                bad = HybridConnectionClient(cs.namespace, "hc1", _Recording("app", WRONG_KEY, 300, tokens),
                                             token_in_query=in_query)
                for call in (
                    lambda bad=bad: bad.request("GET", "/x", timeout=10),
                    lambda bad=bad: bad.connect(timeout=10),
                ):
                    with pytest.raises(AuthenticationError) as info:
                        call()
                    texts.append(_describe(info.value))
                bad.close()
                none_listening = HybridConnectionClient(cs.namespace, "hc2", _Recording("app", KEY, 300, tokens),
                                                        token_in_query=in_query)
                # called at once, in this iteration: the late binding B023 warns of cannot bite
                for call in (lambda: none_listening.request("GET", "/x", timeout=10),  # noqa: B023
                             lambda: none_listening.connect(timeout=10)):  # noqa: B023
                    with pytest.raises(HybridConnectionError) as info:
                        call()
                    texts.append(_describe(info.value))
                none_listening.close()
                wrong_listener = HybridConnectionListener(
                    cs.namespace, "hc2", _Recording("app", WRONG_KEY, 300, tokens), token_in_query=in_query
                )
                with pytest.raises(AuthenticationError) as info:
                    wrong_listener.open(timeout=10)
                texts.append(_describe(info.value))
                texts.append(repr(wrong_listener))
                wrong_listener.close()
            texts.append(repr(listener.last_error))
        finally:
            for client in clients:
                client.close()
            listener.close(timeout=10)
    texts.append(repr(relay))
    lines = capture.lines
    # the capture really saw the libraries talk (a silent capture would prove nothing)
    assert any(line.startswith("websocket ") for line in lines), "websocket-client trace missing"
    assert any(line.startswith("urllib3") for line in lines), "urllib3 debug log missing"
    assert any(line.startswith("hybridconn.emulator") for line in lines)
    assert any(line.startswith("hybridconn.listener") for line in lines)
    secrets = _secrets(tokens)
    haystack = "\n".join(lines + texts)
    leaks = sorted({secret[:12] + "..." for secret in secrets if secret and secret in haystack})
    where = sorted({line.split(" ", 2)[0] + " " + line.split(" ", 2)[1][:12] if line in lines else line[:60]
                    for line in lines + texts if any(secret in line for secret in secrets)})
    assert not leaks, f"secrets found: {leaks} in {where}"
    print(
        f"\n[reliability] secrets: {len(lines)} log lines + {len(texts)} messages/reprs searched for "
        f"{len(secrets)} secret strings ({len(tokens)} tokens, their signatures raw and URL-encoded, 2 keys): 0 found"
    )


# ------------------------------------------------------------------------------------------------
# TLS verification on by default


@pytest.fixture
def tls_relay() -> Iterator[RelayEmulator]:
    try:
        relay = RelayEmulator(tls="self-signed").start()
    except (OSError, RuntimeError) as exc:  # pragma: no cover - openssl missing
        pytest.fail(f"cannot make a self-signed certificate here: {exc}")
    try:
        yield relay
    finally:
        relay.close()


def test_tls_is_verified_by_default_for_client_and_listener(tls_relay: RelayEmulator) -> None:
    cs = tls_relay.connection_string("hc1")
    ca = tls_relay.certificate_path
    assert ca and os.path.isfile(ca)
    # without the CA: a clear error, both roles, every operation
    listener = HybridConnectionListener.from_connection_string(cs)
    with pytest.raises(RelayConnectionError) as info:
        listener.open(timeout=10)
    assert "certificate" in str(info.value).lower() and "verify=" in str(info.value)
    listener.close()
    client = HybridConnectionClient.from_connection_string(cs)
    for call in (lambda: client.request("GET", "/x", timeout=10), lambda: client.connect(timeout=10)):
        with pytest.raises(RelayConnectionError) as info:
            call()
        assert "certificate" in str(info.value).lower() and "verify=" in str(info.value)
    client.close()
    # with the CA: everything works
    listener = HybridConnectionListener.from_connection_string(cs, verify=ca)
    listener.on_request = lambda req: RelayedResponse(body=b"tls " + req.body)
    listener.on_connection = echo_connection
    client = HybridConnectionClient.from_connection_string(cs, verify=ca)
    try:
        listener.open(timeout=15)
        assert client.request("POST", "/x", data=b"ok", timeout=10).content == b"tls ok"
        big = os.urandom(100_000)
        assert client.request("POST", "/big", data=big, timeout=30).content == b"tls " + big
        with client.connect(timeout=10) as conn:
            conn.send(b"\x00bytes")
            assert conn.recv(timeout=10) == b"\x00bytes"
    finally:
        client.close()
        listener.close(timeout=10)


