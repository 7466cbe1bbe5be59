"""What goes on the wire with an Entra ID credential, seen by a relay that only records:
the JWT as it is (no ``Bearer``) in ``ServiceBusAuthorization`` on the listen and connect
handshakes and on HTTP requests, ``sb-hc-token`` when asked, and ``{"renewToken":{"token":<jwt>}}``
on the control channel - as Microsoft's .NET client sends them."""

from __future__ import annotations

import json
import logging
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from hybridconn import HandshakeError, HybridConnectionClient, HybridConnectionListener
from hybridconn._entra import jwt_claims
from hybridconn.auth import RELAY_SCOPE
from hybridconn.emulator import DevCredential
from tests.support.fake_relay import TEXT, FakeRelay
from tests.support.scripted_server import ScriptedServer, scripted_server


class Recording(DevCredential):
    """A DevCredential that remembers every token it handed out."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.tokens = []

    def get_token_info(self, *scopes: str, options: object = None) -> object:
        info = super().get_token_info(*scopes, options=options)
        self.tokens.append(info.token)
        return info


@pytest.fixture
def fake_relay() -> Iterator[FakeRelay]:
    relay = FakeRelay()
    yield relay
    relay.close()


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with scripted_server() as server:
        yield server


def test_listen_handshake_and_renew_token(fake_relay: FakeRelay, caplog: pytest.LogCaptureFixture) -> None:
    credential = Recording("owner-app", lifetime=4)
    listener = HybridConnectionListener(fake_relay.namespace, "hc1", token_provider=credential)
    try:
        with caplog.at_level(logging.DEBUG):
            listener.open(timeout=15)
            channel = fake_relay.next_channel()
            assert channel.headers["servicebusauthorization"] == credential.tokens[0]  # the bare JWT
            assert "sb-hc-token" not in channel.target
            opcode, payload, _ = channel.read_frame(timeout=15)  # renewed at half a 4 s token's life
        assert opcode == TEXT
        assert json.loads(payload) == {"renewToken": {"token": credential.tokens[1]}}
        assert credential.tokens[1] != credential.tokens[0] and credential.scopes == [RELAY_SCOPE]
        assert jwt_claims(credential.tokens[1])["exp"] > jwt_claims(credential.tokens[0])["exp"]
        for token in credential.tokens:
            assert token not in caplog.text
    finally:
        listener.close(timeout=5)


def test_token_in_query(fake_relay: FakeRelay) -> None:
    credential = Recording("owner-app")
    listener = HybridConnectionListener(fake_relay.namespace, "hc1", token_provider=credential, token_in_query=True)
    try:
        listener.open(timeout=15)
        channel = fake_relay.next_channel()
        assert parse_qs(urlsplit(channel.target).query)["sb-hc-token"] == [credential.tokens[0]]
        assert "servicebusauthorization" not in channel.headers
    finally:
        listener.close(timeout=5)


def test_sender_handshake_and_http_request(scripted: ScriptedServer) -> None:
    credential = Recording("sender-app")
    client = HybridConnectionClient(scripted.base.replace("http://", "ws://"), "hc1", token_provider=credential)
    try:
        with pytest.raises(HandshakeError):
            client.connect(timeout=10)  # the scripted server refuses the upgrade; its request is recorded
        client.request("GET", "/x", timeout=10)
    finally:
        client.close()
    upgrade, plain = scripted.requests[0], scripted.requests[1]
    assert upgrade.headers["ServiceBusAuthorization"] == credential.tokens[0]
    assert plain.headers["ServiceBusAuthorization"] == credential.tokens[0]  # one token, cached, for both
    assert "Authorization" not in plain.headers
    assert len(credential.tokens) == 1


def test_the_emulator_is_not_needed_to_read_the_claims() -> None:
    token = DevCredential("who").get_token(RELAY_SCOPE).token
    claims = jwt_claims(token)
    assert claims["oid"] == "who" and claims["aud"] == "https://relay.azure.net/" and claims["ver"] == "1.0"
