"""The SAS token is never sent anywhere but the relay it was made for.

A real loopback server plays a relay that answers every handshake with a redirect (301, 302, 307,
308) to a second real server, which would complete the WebSocket upgrade (so a followed redirect
would even "work"). Neither ``client.connect()`` nor ``listener.open()`` follows it: the second
server never sees a request, let alone the token. Over HTTP, redirects are returned as sent by
default, and followed only when asked, without the token on a change of origin."""

from __future__ import annotations

from typing import Iterator, Tuple

import pytest

from hybridconn import HybridConnectionClient, HybridConnectionError, HybridConnectionListener, RelayConnectionError
from hybridconn.auth import SharedAccessKeyTokenProvider
from tests.support.scripted_server import ScriptedServer, scripted_server

KEY_NAME, KEY = "root", "cmVkaXJlY3QtdGVzdHMtc2VjcmV0LWtleQ=="
REDIRECTS = [301, 302, 307, 308]


@pytest.fixture
def servers() -> Iterator[Tuple[ScriptedServer, ScriptedServer]]:
    with scripted_server() as relay, scripted_server() as elsewhere:
        elsewhere.upgrade_subprotocol = ""  # a followed redirect would get a working WebSocket here
        elsewhere.answer(200, "OK", {"Via": "1.1 elsewhere"}, b"you followed")
        yield relay, elsewhere


def _provider() -> SharedAccessKeyTokenProvider:
    return SharedAccessKeyTokenProvider(KEY_NAME, KEY)


def _redirect(relay: ScriptedServer, elsewhere: ScriptedServer, status: int, scheme: str = "ws") -> None:
    target = elsewhere.base.replace("http", scheme, 1) + "/$hc/hc1?stolen=1"
    relay.answer(status, "Moved", {"Location": target})


@pytest.mark.parametrize("status", REDIRECTS)
def test_client_connect_never_follows_a_handshake_redirect(servers: Tuple[ScriptedServer, ScriptedServer],
                                                           status: int) -> None:
    relay, elsewhere = servers
    _redirect(relay, elsewhere, status)
    with HybridConnectionClient(relay.base, "hc1", token_provider=_provider()) as client:
        with pytest.raises(RelayConnectionError, match="redirect") as caught:
            client.connect(timeout=10)
    assert "sig=" not in str(caught.value) and KEY not in str(caught.value)
    assert len(relay.requests) == 1 and "ServiceBusAuthorization" in relay.requests[0].headers
    assert elsewhere.requests == []  # nothing, and so no token, went to the other place


@pytest.mark.parametrize("status", REDIRECTS)
def test_listener_open_never_follows_a_handshake_redirect(servers: Tuple[ScriptedServer, ScriptedServer],
                                                          status: int) -> None:
    relay, elsewhere = servers
    _redirect(relay, elsewhere, status)
    listener = HybridConnectionListener(relay.base, "hc1", token_provider=_provider(), backoff=[0.2], jitter=0)
    listener.on_request = lambda request: None  # type: ignore[assignment,return-value]
    try:
        with pytest.raises(HybridConnectionError):
            listener.open(timeout=5)
    finally:
        listener.close(timeout=5)
    assert relay.requests, "the listener never reached the relay"
    assert elsewhere.requests == []


def test_a_token_in_the_query_is_not_followed_either(servers: Tuple[ScriptedServer, ScriptedServer]) -> None:
    relay, elsewhere = servers
    _redirect(relay, elsewhere, 307)
    with HybridConnectionClient(relay.base, "hc1", token_provider=_provider(), token_in_query=True) as client:
        with pytest.raises(RelayConnectionError, match="redirect"):
            client.connect(timeout=10)
    assert "sb-hc-token=" in relay.requests[0].target
    assert elsewhere.requests == []


@pytest.mark.parametrize("status", REDIRECTS)
def test_http_redirects_are_returned_or_followed_without_the_token(
        servers: Tuple[ScriptedServer, ScriptedServer], status: int) -> None:
    relay, elsewhere = servers
    relay.answer(status, "Moved", {"Location": elsewhere.base + "/landing", "Via": "1.1 listener"})
    for token_in_query in (False, True):
        with HybridConnectionClient(relay.base, "hc1", token_provider=_provider(),
                                    token_in_query=token_in_query) as client:
            response = client.request("GET", "/go")
            assert response.status_code == status  # returned, not followed
            followed = client.request("GET", "/go", allow_redirects=True)
            assert followed.content == b"you followed"
    assert len(elsewhere.requests) == 2
    for seen in elsewhere.requests:  # another origin (another port): the token stayed behind
        assert "ServiceBusAuthorization" not in seen.headers and "Authorization" not in seen.headers
        assert "sb-hc-token" not in seen.target
