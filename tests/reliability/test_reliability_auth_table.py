"""Table-driven authorization: every bad token, in each of the three places, for listen, connect and
HTTP, gets exactly the documented status (spec: 401 missing/malformed/invalid, 403 not valid for
this action, 404 no such hybrid connection) and is never admitted. The library maps each to its
typed error."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest
import requests
import websocket

from hybridconn import (
    AuthenticationError, AuthorizationError, EndpointNotFoundError, HybridConnectionClient, HybridConnectionListener,
    RelayedRequest, RelayedResponse,
)
from hybridconn.auth import generate_sas_token
from hybridconn.emulator import RelayEmulator

KEYS = {"root": "cm9vdC1rZXktZm9yLXRhYmxlLXRlc3Rz", "listen": ("bGlzdGVuLWtleQ==", {"Listen"}),
        "send": ("c2VuZC1rZXk=", {"Send"})}
PLACES = ("query", "servicebus-header", "authorization-header")
STATUS_ERRORS = {401: AuthenticationError, 403: AuthorizationError, 404: EndpointNotFoundError}


def _token(relay: RelayEmulator, case: str, action: str) -> Tuple[Optional[str], str, int]:
    """(token, path, expected status) for a case and an action (listen, connect, http)."""
    audience = f"http://127.0.0.1:{relay.port}/hc1"
    root = KEYS["root"]
    rights_case = {"listen": "send-only", "connect": "listen-only", "http": "listen-only"}[action]
    table: Dict[str, Tuple[Optional[str], str, int]] = {
        "missing": (None, "hc1", 401),
        "garbage": ("SharedAccessSignature this-is-not-a-token", "hc1", 401),
        "not-yet-valid-garbage": (f"SharedAccessSignature sr={quote(audience, safe='')}&sig=abc&se=tomorrow&skn=root",
                                  "hc1", 401),
        "wrong-signature": (generate_sas_token(audience, "root", "d3Jvbmcta2V5", 300), "hc1", 401),
        "expired": (generate_sas_token(audience, "root", root, -60), "hc1", 401),
        "wrong-audience": (generate_sas_token(f"http://127.0.0.1:{relay.port}/other", "root", root, 300), "hc1", 401),
        "wrong-key-name": (generate_sas_token(audience, "nosuchrule", root, 300), "hc1", 401),
        "unknown-path": (generate_sas_token(f"http://127.0.0.1:{relay.port}/nope", "root", root, 300), "nope", 404),
    }
    if case == "wrong-right":
        name = "send" if rights_case == "send-only" else "listen"
        return generate_sas_token(audience, name, KEYS[name][0], 300), "hc1", 403
    return table[case]


CASES = ["missing", "garbage", "not-yet-valid-garbage", "wrong-signature", "expired", "wrong-audience",
         "wrong-key-name", "wrong-right", "unknown-path"]
#: (case, place): a missing token has no place to be in.
PARAMS = [(case, place) for case in CASES for place in (PLACES if case != "missing" else ("nowhere",))]


class _Gate:
    """A listener with every right on hc1; records anything that gets through to it."""

    def __init__(self, relay: RelayEmulator) -> None:
        self.admitted: List[str] = []
        self.lock = threading.Lock()
        self.listener = HybridConnectionListener.from_connection_string(relay.connection_string("hc1", "root"))
        self.listener.on_request = self._request
        self.listener.on_connection = self._connection
        self.listener.open(timeout=15)

    def _request(self, req: RelayedRequest) -> RelayedResponse:
        with self.lock:
            self.admitted.append(f"http {req.target}")
        return RelayedResponse(body=b"admitted")

    def _connection(self, conn: Any) -> None:
        with self.lock:
            self.admitted.append(f"ws {conn.path}?{conn.query}")
        conn.close()


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"], "keys": KEYS}


@pytest.fixture
def gate(relay: RelayEmulator) -> Iterator[_Gate]:
    made = _Gate(relay)
    yield made
    made.listener.close(timeout=5)


def _provider(token: Optional[str]) -> Any:
    """A provider that hands out ``token`` as is (StaticTokenProvider would refuse the malformed ones)."""
    if token is None:
        return None
    return lambda audience: (token, time.time() + 300)


def _placed(token: Optional[str], place: str) -> Tuple[str, Dict[str, str]]:
    """(extra query, headers) carrying ``token`` in ``place``."""
    if token is None:
        return "", {}
    if place == "query":
        return f"sb-hc-token={quote(token, safe='')}", {}
    if place == "servicebus-header":
        return "", {"ServiceBusAuthorization": token}
    return "", {"Authorization": token}


def _ws_status(url: str, headers: Dict[str, str]) -> int:
    try:
        ws = websocket.create_connection(url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=10)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    ws.close(timeout=2)
    return 101


counts = {"checked": 0}


@pytest.mark.parametrize("case, place", PARAMS)
def test_listen(relay: RelayEmulator, case: str, place: str) -> None:
    token, path, expected = _token(relay, case, "listen")
    query, headers = _placed(token, place)
    url = f"{relay.namespace}/$hc/{path}?{query + '&' if query else ''}sb-hc-action=listen"
    assert _ws_status(url, headers) == expected
    assert relay.listener_count("hc1") == 0  # never admitted
    # the library: the same refusal as its typed error, never online
    listener = HybridConnectionListener(relay.namespace, path, _provider(token),
                                        token_in_query=place == "query")
    with pytest.raises(STATUS_ERRORS[expected]):
        listener.open(timeout=10)
    assert not listener.is_online
    listener.close()
    counts["checked"] += 2


@pytest.mark.parametrize("case, place", PARAMS)
def test_connect(relay: RelayEmulator, gate: _Gate, case: str, place: str) -> None:
    token, path, expected = _token(relay, case, "connect")
    query, headers = _placed(token, place)
    url = f"{relay.namespace}/$hc/{path}?{query + '&' if query else ''}sb-hc-action=connect"
    assert _ws_status(url, headers) == expected
    client = HybridConnectionClient(relay.namespace, path, _provider(token),
                                    token_in_query=place == "query")
    if place == "authorization-header" and token is not None:
        client = HybridConnectionClient(relay.namespace, path, None)
        with pytest.raises(STATUS_ERRORS[expected]):
            client.connect(headers={"Authorization": token}, timeout=10)
    else:
        with pytest.raises(STATUS_ERRORS[expected]):
            client.connect(timeout=10)
    client.close()
    assert gate.admitted == []
    counts["checked"] += 2


@pytest.mark.parametrize("case, place", PARAMS)
def test_http(relay: RelayEmulator, gate: _Gate, case: str, place: str) -> None:
    token, path, expected = _token(relay, case, "http")
    query, headers = _placed(token, place)
    url = f"{relay.http_base}/{path}/x{'?' + query if query else ''}"
    response = requests.post(url, data=b"body", headers=headers, timeout=10)
    assert response.status_code == expected
    assert "Via" not in response.headers and response.content != b"admitted"
    client = HybridConnectionClient(relay.namespace, path, _provider(token),
                                    token_in_query=place == "query")
    extra = {"headers": {"Authorization": token}} if place == "authorization-header" and token else {}
    if extra:
        client = HybridConnectionClient(relay.namespace, path, None)
    with pytest.raises(STATUS_ERRORS[expected]):
        client.request("POST", "/x", data=b"body", timeout=10, **extra)
    client.close()
    assert gate.admitted == []
    counts["checked"] += 2


def test_valid_tokens_are_admitted_in_each_place(relay: RelayEmulator, gate: _Gate) -> None:
    """The control row: the same three places with good tokens do get through."""
    audience = f"http://127.0.0.1:{relay.port}/hc1"
    send = generate_sas_token(audience, "send", KEYS["send"][0], 300)
    for place in PLACES:
        query, headers = _placed(send, place)
        url = f"{relay.http_base}/hc1/ok{'?' + query if query else ''}"
        assert requests.get(url, headers=headers, timeout=10).content == b"admitted"
        url = f"{relay.namespace}/$hc/hc1?{query + '&' if query else ''}sb-hc-action=connect"
        assert _ws_status(url, headers) == 101
    assert wait_admitted(gate, 6)
    print(f"\n[reliability] auth table: {counts['checked']} refusals checked (raw status + typed error), "
          f"0 admitted; 3 places x 2 kinds admitted with valid tokens")


def wait_admitted(gate: _Gate, count: int) -> bool:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with gate.lock:
            if len(gate.admitted) >= count:
                return True
        time.sleep(0.05)
    return False
