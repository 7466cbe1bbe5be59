"""Scenario 6, online part: the emulator accepts every ``sr`` form the Node clients produce.

The peers mint their own tokens with createRelayToken for the URI given by --token-uri
(default: the URI they connect to), and the emulator must accept or refuse them the way the
service does. Forms that need a real namespace name (``createRelayListenUri``'s ``:443``) are
covered offline in test_interop_tokens.py.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from hybridconn.addresses import connect_url, listen_url
from tests.support.node_peers import NodePeer, event_message, peer_args, requires_node, run_node_events

pytestmark = [pytest.mark.interop, requires_node]

TIMEOUT = 20.0


def authority(relay: Any) -> str:
    return relay.namespace.split("://", 1)[1]


# name -> how the token URI is built from "127.0.0.1:PORT" (None: the URI the peer connects to)
FORMS: Dict[str, Any] = {
    "connect-uri": None,  # ws://127.0.0.1:PORT/$hc/hc1?sb-hc-action=... -> sr http://127.0.0.1:PORT/hc1
    "https-helper": lambda a: f"https://{a}/hc1",  # createRelayHttpsUri(ns, path), hyco-https/index.js:95
    "namespace": lambda a: f"http://{a}",  # README's 'http://' + ns -> sr http://127.0.0.1:PORT/
    "trailing-slash": lambda a: f"http://{a}/hc1/",
    "base-uri": lambda a: f"wss://{a}/$hc/hc1",  # createRelayBaseUri's shape, without a query
}


def token_uri_args(relay: Any, form: str) -> Dict[str, str]:
    build = FORMS[form]
    return {} if build is None else {"token_uri": build(authority(relay))}


@pytest.mark.parametrize("token_in", ["header", "query"])
@pytest.mark.parametrize("form", list(FORMS))
def test_emulator_accepts_hyco_ws_token_forms(relay: Any, start_peer: Any, form: str, token_in: str) -> None:
    extra = dict(token_uri_args(relay, form), token_in=token_in)
    listener = start_peer("ws_listener.js", *peer_args(uri=listen_url(relay.namespace, "hc1"), **extra))
    listener.wait_for("listening", timeout=TIMEOUT)
    relay.wait_for_listeners("hc1", count=1, timeout=10)
    sender = start_peer("ws_sender.js", *peer_args(uri=connect_url(relay.namespace, "hc1"), **extra))
    sender.wait_for("open", timeout=TIMEOUT)
    sender.send(cmd="send", text=f"{form} via {token_in}")
    assert event_message(sender.wait_for("message", timeout=TIMEOUT)) == f"{form} via {token_in}"
    assert not listener.events("error") and not sender.events("error")


@pytest.fixture
def hyco_https_listener(relay: Any, start_peer: Any) -> NodePeer:
    peer = start_peer("https_listener.js", *peer_args(uri=listen_url(relay.namespace, "hc1"), hc="hc1"))
    peer.wait_for("listening")
    relay.wait_for_listeners("hc1", count=1, timeout=10)
    return peer


def test_emulator_accepts_and_refuses_node_http_tokens(relay: Any, hyco_https_listener: NodePeer) -> None:
    a = authority(relay)
    accepted: List[Dict[str, Any]] = [
        {"tokenIn": token_in, **({"tokenUri": FORMS[form](a)} if FORMS[form] else {})}
        for form in FORMS
        for token_in in ("header", "query")
    ]
    refused: List[Dict[str, Any]] = [
        {"tokenUri": f"http://{a}/hc2"},  # another hybrid connection
        {"tokenUri": f"http://{a}/hc10"},  # a name that merely starts like hc1
        {"tokenUri": "https://contoso.servicebus.windows.net/hc1"},  # another namespace
        {"key": "not-the-key"},
        {"expirationSeconds": -60},  # already expired
        {"tokenIn": "none"},
    ]
    specs = [dict(spec, method="GET", target="/echo") for spec in accepted + refused]
    ns = authority(relay)
    events = run_node_events("http_sender.js", peer_args(ns=ns, hc="hc1"), stdin=specs, timeout=60)
    responses = [e for e in events if e.get("event") == "response"]
    assert len(responses) == len(specs), events
    for spec, response in zip(accepted, responses):
        assert response["status"] == 200, (spec, response["status"], response["statusMessage"])
    for spec, response in zip(refused, responses[len(accepted):]):
        assert response["status"] == 401, (spec, response["status"], response["statusMessage"])
        # A refusal by the relay carries no Via (only listener responses do).
        assert "via" not in response["headers"], spec
    assert len(hyco_https_listener.wait_for_count("request", len(accepted))) == len(accepted)


@pytest.mark.parametrize(
    "options",
    [
        {"token_uri_path": "hc2"},
        {"token_expiry": "-60"},
        {"key": "not-the-key"},
    ],
    ids=["other-entity", "expired", "wrong-key"],
)
def test_emulator_refuses_bad_hyco_ws_sender_tokens(relay: Any, start_peer: Any, options: Dict[str, str]) -> None:
    # A listener is online, so a refusal can only be about the token.
    listener = start_peer("ws_listener.js", *peer_args(uri=listen_url(relay.namespace, "hc1")))
    listener.wait_for("listening", timeout=TIMEOUT)
    relay.wait_for_listeners("hc1", count=1, timeout=10)
    extra = dict(options)
    if "token_uri_path" in extra:
        extra["token_uri"] = f"http://{authority(relay)}/{extra.pop('token_uri_path')}"
    sender = start_peer("ws_sender.js", *peer_args(uri=connect_url(relay.namespace, "hc1"), **extra))
    error = sender.wait_for("error", timeout=TIMEOUT)
    # ws 1.1.5's wording for a refused upgrade (hyco-ws/node_modules/ws/lib/WebSocket.js).
    assert "unexpected server response (401)" in error["message"]
    assert not sender.events("open")
    assert not listener.events("connection")


def test_emulator_refuses_hyco_https_listener_with_bad_token(relay: Any, start_peer: Any) -> None:
    # hyco-https backs off 0, 1, 2 s between attempts (HybridConnectionHttpsServer.js:319-358);
    # hyco-ws would retry without delay, doubling each round (...WebSocketServer.js:122-143),
    # so the refused-listener case is checked with hyco-https only.
    peer = start_peer(
        "https_listener.js",
        *peer_args(uri=listen_url(relay.namespace, "hc1"), hc="hc1", token_uri=f"http://{authority(relay)}/hc2"),
    )
    error = peer.wait_for("error", timeout=TIMEOUT)
    # ws 6's wording (hyco-https uses ws ^6).
    assert "Unexpected server response: 401" in error["message"]
    assert not peer.events("listening")
