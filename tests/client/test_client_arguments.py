"""connect() takes the suffix first, as request() does, and names a misplaced argument (issue 19, item 8)."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from hybridconn import ConnectionString, HybridConnectionClient
from hybridconn.addresses import parse_address
from hybridconn.emulator import RelayEmulator
from tests.support.tiny_listener import TinyListener


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1"]}


@pytest.fixture
def listener(relay: RelayEmulator) -> Iterator[TinyListener]:
    parsed = ConnectionString.parse(relay.connection_string("hc1"))
    assert parsed.shared_access_key_name and parsed.shared_access_key
    with TinyListener(relay.namespace, "hc1", parsed.shared_access_key_name, parsed.shared_access_key) as running:
        yield running


@pytest.fixture
def client(relay: RelayEmulator) -> Iterator[HybridConnectionClient]:
    with HybridConnectionClient.from_connection_string(relay.connection_string("hc1")) as running:
        yield running


def test_suffix_is_the_first_positional_argument(listener: TinyListener, client: HybridConnectionClient) -> None:
    with client.connect("/chat", {"X-App": "1"}, timeout=10) as conn:
        conn.send("hi")
        assert conn.recv(timeout=10) == "hi"
        assert conn.path == "/chat"
    accept = listener.seen.accepts[0]
    assert parse_address(accept.address, "hc1").suffix == "/chat"
    assert {k.lower(): v for k, v in accept.connect_headers.items()}["x-app"] == "1"


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (({"X-App": "1"},), {}, "takes the path suffix first"),
        ((7,), {}, "suffix must be a string"),
        (("/x", ["X-App"]), {}, "headers must be a mapping"),
        (("/x", {"X-N": 3}), {}, "headers must map str to str"),
        (("/x", None, 5), {}, "subprotocols must be a string or a list"),
        (("/x",), {"id": 12}, "id must be a string"),
        (("/x",), {"timeout": "10"}, "timeout must be a number"),
    ],
)
def test_wrong_argument_types_fail_before_any_network(
    args: Any, kwargs: Dict[str, Any], message: str
) -> None:
    # No relay is listening on this port: a TypeError proves the check runs before any dial.
    client = HybridConnectionClient("ws://127.0.0.1:9", "hc1")
    with pytest.raises(TypeError, match=message):
        client.connect(*args, **kwargs)


def test_request_names_a_misplaced_method() -> None:
    client = HybridConnectionClient("ws://127.0.0.1:9", "hc1")
    with pytest.raises(TypeError, match="HTTP method first"):
        client.request("/x")  # type: ignore[call-arg]
