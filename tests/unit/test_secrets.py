"""Keys, signatures and tokens never show in a repr, a str, a redacted URL or an error message."""

from __future__ import annotations

from typing import Callable, List

import pytest

from hybridconn.addresses import connect_url, listen_url, redact_url
from hybridconn.auth import (
    CallableTokenProvider,
    ConnectionString,
    SasAuth,
    SharedAccessKeyTokenProvider,
    StaticTokenProvider,
    generate_sas_token,
    parse_sas_token,
    verify_sas_token,
)
from hybridconn.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HandshakeError,
    HybridConnectionError,
    ListenerUnavailableError,
    ProtocolError,
    error_for_status,
)
from hybridconn.protocol import FrameAssembler, ProtocolViolation, RenewToken, parse_message, serialize_message

NS = "contoso.servicebus.windows.net"
KEY = "KEYc2VjcmV0LWtleS12YWx1ZS1mb3ItdGVzdHM0123456789="
TOKEN = generate_sas_token(f"http://{NS}/hc1", "root", KEY, ttl=3600, clock=lambda: 1_700_000_000)
SIGNATURE = parse_sas_token(TOKEN).signature  # decoded
ENCODED_SIGNATURE = TOKEN.split("&sig=")[1].split("&")[0]
CS_TEXT = f"Endpoint=sb://{NS}/;SharedAccessKeyName=root;SharedAccessKey={KEY};EntityPath=hc1"
CS_SAS_TEXT = f"Endpoint=sb://{NS}/;SharedAccessSignature={TOKEN};EntityPath=hc1"


def assert_no_secret(text: str) -> None:
    for secret in (KEY, KEY[:20], TOKEN, SIGNATURE, ENCODED_SIGNATURE, SIGNATURE[:16]):
        assert secret not in text, f"secret leaked into {text!r}"


def shown(obj: object) -> List[str]:
    return [repr(obj), str(obj), f"{obj}", f"{obj!r}"]


def test_the_secrets_are_where_we_think() -> None:
    # guard against a vacuous suite: the raw material really holds the secrets
    assert KEY in CS_TEXT and SIGNATURE and ENCODED_SIGNATURE in TOKEN and TOKEN in CS_SAS_TEXT


def test_parsed_token() -> None:
    parsed = parse_sas_token(TOKEN)
    for text in shown(parsed):
        assert_no_secret(text)
    assert "root" in repr(parsed) and "1700003600" in repr(parsed)


def test_renew_token_message() -> None:
    message = RenewToken(TOKEN)
    for text in shown(message):
        assert_no_secret(text)
    assert message.token == TOKEN  # still usable
    assert_no_secret(repr(parse_message(serialize_message(message))))


def test_providers_and_auth() -> None:
    key_provider = SharedAccessKeyTokenProvider("root", KEY)
    static = StaticTokenProvider(TOKEN)
    callable_provider = CallableTokenProvider(lambda audience: (TOKEN, 1))
    for obj in (key_provider, static, callable_provider, SasAuth(key_provider), SasAuth(static)):
        for text in shown(obj):
            assert_no_secret(text)
    key_provider.get_token(f"http://{NS}/hc1")  # a cached token doesn't show either
    for text in shown(key_provider):
        assert_no_secret(text)


@pytest.mark.parametrize("text", [CS_TEXT, CS_SAS_TEXT])
def test_connection_strings(text: str) -> None:
    cs = ConnectionString.parse(text)
    for out in shown(cs):
        assert_no_secret(out)
    assert "<redacted>" in str(cs)
    assert cs.to_connection_string() == text  # the full text is there for those who ask for it


def test_urls() -> None:
    for url in (
        listen_url(NS, "hc1", token=TOKEN),
        connect_url(NS, "hc1", suffix="/x", query="a=1", token=TOKEN),
        f"https://{NS}/hc1?sb-hc-token={TOKEN}",
        f"https://{NS}/hc1?sig={ENCODED_SIGNATURE}&se=1",
    ):
        assert_no_secret(redact_url(url))


ERROR_FACTORIES: List[Callable[[], Exception]] = [
    lambda: ConnectionString.parse(CS_TEXT.replace("EntityPath", "Bogus")),
    lambda: ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKey={KEY}"),
    lambda: ConnectionString.parse(f"SharedAccessKeyName=root;SharedAccessKey={KEY}"),
    lambda: ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKey={KEY[:10]};{KEY[10:]}"),
    lambda: ConnectionString.parse(f"{CS_TEXT};SharedAccessSignature={TOKEN}"),
    lambda: ConnectionString.parse(f"{CS_TEXT};UseDevelopmentEmulator={KEY}"),
    lambda: StaticTokenProvider(TOKEN.replace("&se=", "&xx=")),
    lambda: verify_sas_token(TOKEN, {"root": "other"}, f"http://{NS}/hc1", now=0),
    lambda: verify_sas_token(TOKEN, {"nobody": KEY}, f"http://{NS}/hc1", now=0),
    lambda: verify_sas_token(TOKEN, {"root": KEY}, f"http://{NS}/hc1", now=2e9),
    lambda: verify_sas_token(TOKEN, {"root": KEY}, f"http://{NS}/hc2", now=0),
    lambda: parse_sas_token(TOKEN.replace("&skn=root", "")),
    lambda: parse_sas_token(TOKEN.replace("&se=1700003600", "&se=soon")),
    lambda: parse_message('{"renewToken":{"token":"%s"' % TOKEN),
    lambda: parse_message('{"renewToken":{"token":"%s"}, "x":' % TOKEN),
    lambda: parse_message('{"renewToken":{"token":["%s"]}}' % TOKEN),
    lambda: parse_message('{"renewToken":{"token":"%s"}, "accept":{}}' % TOKEN),
    lambda: parse_message(('{"request":{"id":"1","body":"%s"}}' % TOKEN).encode("utf-8")),
    lambda: parse_message('{"request":{"id":"1","requestHeaders":{"ServiceBusAuthorization":{"v":"%s"}}}}' % TOKEN),
    lambda: SharedAccessKeyTokenProvider("", KEY),
    lambda: generate_sas_token(f"http://{NS}/hc1", "", KEY),
]


@pytest.mark.parametrize("factory", ERROR_FACTORIES)
def test_error_messages_raised_by_the_library(factory: Callable[[], Exception]) -> None:
    with pytest.raises(HybridConnectionError) as info:
        factory()
    error = info.value
    for text in shown(error):
        assert_no_secret(text)
    assert_no_secret(" ".join(str(a) for a in error.args))


@pytest.mark.parametrize(
    "cls", [HandshakeError, AuthenticationError, AuthorizationError, EndpointNotFoundError,
            ListenerUnavailableError, ConnectionRejectedError],
)
def test_every_handshake_error_scrubs_service_text(cls: type) -> None:
    reason = f"rejected {TOKEN} at wss://{NS}/$hc/hc1?sb-hc-token={TOKEN}"
    error = cls(401, reason)
    for text in shown(error) + [error.reason]:
        assert_no_secret(text)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500, 502, 503, 504])
def test_error_for_status_scrubs(status: int) -> None:
    error = error_for_status(status, f"token {TOKEN} sig={ENCODED_SIGNATURE}")
    for text in shown(error) + [str(getattr(error, "reason", ""))]:
        assert_no_secret(text)


def test_other_errors_scrub_or_never_see_secrets() -> None:
    for error in (ConnectionClosed(1008, f"expired: {TOKEN}"),):
        for text in shown(error) + [error.reason]:
            assert_no_secret(text)
    # errors the assembler reports for a broken renewToken frame
    assembler = FrameAssembler()
    events = assembler.receive_text('{"renewToken":{"token":"%s", oops}}' % TOKEN)
    assert events and isinstance(events[0], ProtocolViolation)
    for text in shown(events[0]) + shown(events[0].error):
        assert_no_secret(text)
    assert isinstance(events[0].error, ProtocolError)


def test_configuration_errors_are_value_errors_without_the_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKeyName=root;SharedAccessKey={KEY};{KEY}")
    assert isinstance(info.value, ValueError)
    assert_no_secret(str(info.value))
