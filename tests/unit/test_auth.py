"""Connection strings, SAS tokens (mint, parse, verify), token providers and SasAuth."""

from __future__ import annotations

from typing import List, Tuple
from urllib.parse import quote

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn.addresses import token_audience
from hybridconn.auth import (
    AUTH_HEADER,
    CallableTokenProvider,
    ConnectionString,
    SasAuth,
    SharedAccessKeyTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    as_token_provider,
    generate_sas_token,
    normalize_audience,
    parse_sas_token,
    renewal_point,
    verify_sas_token,
)
from hybridconn.exceptions import AuthenticationError, ConfigurationError

NS = "contoso.servicebus.windows.net"
KEY = "c2VjcmV0LWtleS12YWx1ZS1mb3ItdGVzdHM="  # any text: keys are used as UTF-8, not decoded


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------------------
# Connection strings


def test_connection_string_parse() -> None:
    cs = ConnectionString.parse(
        f"Endpoint=sb://{NS}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY};EntityPath=hc1"
    )
    assert cs.endpoint == f"sb://{NS}/"
    assert cs.shared_access_key_name == "RootManageSharedAccessKey"
    assert cs.shared_access_key == KEY  # the trailing "=" of base64 survives
    assert cs.entity_path == "hc1"
    assert cs.shared_access_signature is None
    assert cs.use_development_emulator is False
    assert cs.resolve_path(None) == "hc1"
    assert cs.resolve_path("/hc1/") == "hc1"


def test_connection_string_keys_are_case_insensitive_and_whitespace_tolerant() -> None:
    cs = ConnectionString.parse(
        f"  endpoint = sb://127.0.0.1:9350/ ; SHAREDACCESSKEYNAME=k;sharedAccessKey={KEY};"
        "entitypath=hc1;usedevelopmentemulator=TRUE;  "
    )
    assert cs.endpoint == "sb://127.0.0.1:9350/"
    assert cs.shared_access_key_name == "k" and cs.shared_access_key == KEY
    assert cs.use_development_emulator is True


def test_connection_string_with_signature() -> None:
    token = generate_sas_token(f"http://{NS}/hc1", "k", KEY, clock=lambda: 0)
    cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessSignature={token};EntityPath=hc1")
    assert cs.shared_access_signature == token
    provider = cs.token_provider()
    assert isinstance(provider, StaticTokenProvider)
    assert provider.get_token("anything") == (token, 3600.0)


def test_connection_string_token_provider() -> None:
    cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey={KEY}")
    provider = cs.token_provider(ttl=120)
    assert isinstance(provider, SharedAccessKeyTokenProvider)
    assert provider.key_name == "k" and provider.ttl == 120
    assert ConnectionString.parse(f"Endpoint=sb://{NS}/").token_provider() is None


def test_connection_string_round_trip_through_text() -> None:
    text = (
        "Endpoint=sb://127.0.0.1:9350/;SharedAccessKeyName=k;SharedAccessKey=" + KEY
        + ";EntityPath=hc1;UseDevelopmentEmulator=true"
    )
    cs = ConnectionString.parse(text)
    assert cs.to_connection_string() == text
    assert ConnectionString.parse(cs.to_connection_string()) == cs
    # str() is for logs: the key is hidden, everything else shown
    assert str(cs) == text.replace(KEY, "<redacted>")


def test_connection_string_resolve_path_conflicts() -> None:
    cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;EntityPath=hc1")
    with pytest.raises(ConfigurationError, match="EntityPath"):
        cs.resolve_path("other")
    with pytest.raises(ConfigurationError, match="no hybrid connection path"):
        ConnectionString.parse(f"Endpoint=sb://{NS}/").resolve_path(None)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("SharedAccessKeyName=k;SharedAccessKey=" + KEY, "no Endpoint"),
        ("Endpoint=", "no Endpoint"),
        (f"Endpoint=sb://{NS}/;Bogus=1", "part 2 \\('Bogus'\\)"),
        (f"Endpoint=sb://{NS}/;justtext", "part 2"),
        (f"Endpoint=sb://{NS}/;UseDevelopmentEmulator=yes", "UseDevelopmentEmulator"),
        (f"Endpoint=sb://{NS}/;SharedAccessKey={KEY}", "no SharedAccessKeyName"),
        (f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey={KEY};SharedAccessSignature=x", "both"),
        ("Endpoint=ftp://x/;SharedAccessKeyName=k", "scheme"),
        ("Endpoint=sb://:99/", "host"),
    ],
)
def test_connection_string_errors_name_the_bad_part(text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        ConnectionString.parse(text)
    assert isinstance(info.value, ValueError)
    assert KEY not in str(info.value)


def test_connection_string_error_never_echoes_the_key() -> None:
    # a key holding ";" splits into a bogus part made of the key's tail
    for text in (
        f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey=abc;TAILOFKEY=rest",
        f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey=abc;TAILOFKEY",
        f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey=TOPSECRET;UseDevelopmentEmulator=maybe",
        f"Endpoint=sb://{NS}/;SharedAccessKey=TOPSECRET",
        "SharedAccessKey=TOPSECRET",
    ):
        with pytest.raises(ConfigurationError) as info:
            ConnectionString.parse(text)
        message = str(info.value)
        assert "TAILOFKEY" not in message and "TOPSECRET" not in message and "abc" not in message


def test_connection_string_repr_hides_key_and_signature() -> None:
    cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey={KEY}")
    assert KEY not in repr(cs) and KEY not in str(cs)
    assert "shared_access_key_name='k'" in repr(cs)
    token = generate_sas_token(f"http://{NS}/", "k", KEY)
    signed = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessSignature={token}")
    signature = parse_sas_token(token).signature
    for shown in (repr(signed), str(signed)):
        assert token not in shown and signature not in shown


def test_connection_string_invalid_signature() -> None:
    cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessSignature=notatoken")
    with pytest.raises(ConfigurationError, match="SharedAccessSignature"):
        cs.token_provider()


# --------------------------------------------------------------------------------------
# Minting: byte-identical to Microsoft's Node createRelayToken
#
# Produced by an independent implementation of the algorithm in
# shared/reference/node-java-anchors.md §2.2, run with node v20 (`node -e` / a scratch script):
#   sr  = encodeURIComponent(resource)
#   sig = crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(sr + '\n' + se, 'utf8').digest('base64')
#   'SharedAccessSignature sr=' + sr + '&sig=' + encodeURIComponent(sig) + '&se=' + se + '&skn=' + keyName
# (createRelayToken first rewrites the URI with url.format - http scheme, port kept, $hc removed,
# spaces escaped; in hybridconn that is token_audience()'s job, so the resource here is the final URI.)

NODE_VECTORS: List[Tuple[str, str, str, int, str]] = [
    (
        "http://contoso.servicebus.windows.net/hc1", "RootManageSharedAccessKey",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==", 1700000000,
        "SharedAccessSignature sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1"
        "&sig=T3Om9iPH9x9NfmS7THBWrdbmh%2B2%2FwyjEKGK%2FhDsSwdI%3D&se=1700000000&skn=RootManageSharedAccessKey",
    ),
    (
        "http://contoso.servicebus.windows.net:443/hc1", "listen", "abc+/=xyz", 1471633754,
        "SharedAccessSignature sr=http%3A%2F%2Fcontoso.servicebus.windows.net%3A443%2Fhc1"
        "&sig=dB6Dhzwkn%2BzxeXrsukgFIglSh%2Bt2f4uvVGTTIOhOUlY%3D&se=1471633754&skn=listen",
    ),
    (
        "sb://contoso.servicebus.windows.net", "send", "k", 4102444800,
        "SharedAccessSignature sr=sb%3A%2F%2Fcontoso.servicebus.windows.net"
        "&sig=khgQV%2B2DyeI2bbDZCA1em46SQbvQITJ8GFVI71%2Bz0H8%3D&se=4102444800&skn=send",
    ),
    (
        "http://127.0.0.1:9350/my hc/sub path", "rule", "key with spaces", 1,
        "SharedAccessSignature sr=http%3A%2F%2F127.0.0.1%3A9350%2Fmy%20hc%2Fsub%20path"
        "&sig=zmjN5kLMiRAUf%2BMuhtU2whAZZ6r9%2BFbuRAfFVV7W0co%3D&se=1&skn=rule",
    ),
    (
        "http://contoso.servicebus.windows.net/h\u00fcb/\u65e5\u672c/\U0001f600", "r\u00e9gle",
        "cl\u00e9-\u00fcnicode-\U0001f511", 2000000000,
        "SharedAccessSignature sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fh%C3%BCb%2F%E6%97%A5%E6%9C%AC"
        "%2F%F0%9F%98%80&sig=frEqnEpVm%2BRhDXHXFdq2P6mDq1Zeuns5mEaGBZgDgf8%3D&se=2000000000&skn=r\u00e9gle",
    ),
    (
        "http://ns/a!b'c(d)e*f~g-h_i.j?x=1&y=2#frag", "skn", "p@ss;word=!", 1234567890,
        "SharedAccessSignature sr=http%3A%2F%2Fns%2Fa!b'c(d)e*f~g-h_i.j%3Fx%3D1%26y%3D2%23frag"
        "&sig=mWuKh9d56TVOzmlwklT1LrPVjlCm0IYvBXyLoCfPw7o%3D&se=1234567890&skn=skn",
    ),
    (
        "http://contoso.servicebus.windows.net/my%20hc", "k", "secret", 1700000123,
        "SharedAccessSignature sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fmy%2520hc"
        "&sig=O9sqhmPHdwldNuTTAYUOoTp9lNJdPVFl5a%2Fenp%2BeGo4%3D&se=1700000123&skn=k",
    ),
]


@pytest.mark.parametrize("resource, key_name, key, expiry, expected", NODE_VECTORS)
def test_generate_sas_token_matches_node_vectors(resource: str, key_name: str, key: str, expiry: int,
                                                 expected: str) -> None:
    now = 1_000.0
    assert generate_sas_token(resource, key_name, key, ttl=expiry - now, clock=lambda: now) == expected


@pytest.mark.parametrize("resource, key_name, key, expiry, expected", NODE_VECTORS)
def test_node_vectors_parse_and_verify(resource: str, key_name: str, key: str, expiry: int, expected: str) -> None:
    parsed = parse_sas_token(expected)
    assert parsed.audience == resource
    assert (parsed.expiry, parsed.key_name) == (expiry, key_name)
    if "?" not in resource:
        assert verify_sas_token(expected, {key_name: key}, resource, now=expiry - 1) == parsed


def test_generate_uses_clock_and_ttl() -> None:
    token = generate_sas_token(f"http://{NS}/hc1", "k", KEY, ttl=60, clock=lambda: 1000.9)
    assert parse_sas_token(token).expiry == 1060
    with pytest.raises(ConfigurationError):
        generate_sas_token(f"http://{NS}/hc1", "", KEY)
    with pytest.raises(ConfigurationError):
        generate_sas_token(f"http://{NS}/hc1", "k", "")


# --------------------------------------------------------------------------------------
# Parsing


def test_parse_sas_token() -> None:
    token = NODE_VECTORS[0][4]
    parsed = parse_sas_token(token)
    assert parsed.resource == "http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1"  # as written
    assert parsed.audience == "http://contoso.servicebus.windows.net/hc1"
    assert parsed.signature == "T3Om9iPH9x9NfmS7THBWrdbmh+2/wyjEKGK/hDsSwdI="
    assert parsed.expiry == 1700000000 and parsed.key_name == "RootManageSharedAccessKey"
    assert parsed.raw == token
    # fields in any order, prefix in any case
    reordered = "sharedaccesssignature skn=k&se=5&sig=abc&sr=http%3A%2F%2Fx"
    assert parse_sas_token(reordered).key_name == "k"


@pytest.mark.parametrize(
    "token, match",
    [
        ("", "missing"),
        ("SharedAccessSignature ", "missing"),
        ("SharedAccessSignature sr=a&sig=b&se=1", "skn"),
        ("SharedAccessSignature sr=a&sig=b&skn=k", "se"),
        ("SharedAccessSignature sr=a&sig=b&se=soon&skn=k", "se is not a number"),
        (None, "not a string"),
    ],
)
def test_parse_sas_token_errors(token: object, match: str) -> None:
    with pytest.raises(AuthenticationError, match=match) as info:
        parse_sas_token(token)  # type: ignore[arg-type]
    assert info.value.status_code == 401


# --------------------------------------------------------------------------------------
# Verification (the emulator's side)

KEYS = {"root": KEY}


def _token(resource: str, expiry: int = 2_000_000_000, key_name: str = "root", key: str = KEY) -> str:
    return generate_sas_token(resource, key_name, key, ttl=expiry, clock=lambda: 0)


def test_verify_accepts_a_good_token() -> None:
    token = _token(f"http://{NS}/hc1")
    parsed = verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=1_000_000_000)
    assert parsed.key_name == "root"


def test_verify_signature_is_over_sr_as_written() -> None:
    # lower-case percent escapes (the spec's own example uses them) sign differently from upper case
    sr = "http%3a%2f%2fcontoso.servicebus.windows.net%2fhc1"
    from hybridconn.auth import _sign  # the HMAC primitive, to build a token with lower-case escapes

    token = f"SharedAccessSignature sr={sr}&sig={_sign(KEY, sr, 2000000000)}&se=2000000000&skn=root"
    assert verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=0).resource == sr
    # re-encoding sr (upper-case escapes) with the same signature must fail
    forged = token.replace(sr, sr.upper().replace("HTTP", "http"))
    with pytest.raises(AuthenticationError, match="signature"):
        verify_sas_token(forged, KEYS, f"http://{NS}/hc1", now=0)


def test_verify_signature_covers_se_as_written() -> None:
    from hybridconn.auth import _sign

    sr = "http%3A%2F%2Fns%2Fhc1"
    token = f"SharedAccessSignature sr={sr}&sig={_sign(KEY, sr, '0002000000000')}&se=0002000000000&skn=root"
    assert verify_sas_token(token, KEYS, "http://ns/hc1", now=0).expiry == 2000000000


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("se=2000000000", "se=2000000001"),
        lambda t: t.replace("sr=http%3A%2F%2F", "sr=https%3A%2F%2F"),
        lambda t: t.replace("&sig=", "&sig=A"),
        lambda t: t[: t.index("&sig=") + 5] + t[t.index("&sig=") + 9:],
    ],
)
def test_verify_rejects_tampering(mutate: object) -> None:
    token = mutate(_token(f"http://{NS}/hc1"))  # type: ignore[operator]
    with pytest.raises(AuthenticationError, match="signature"):
        verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=0)


def test_verify_rejects_wrong_key_and_unknown_key_name() -> None:
    with pytest.raises(AuthenticationError, match="signature"):
        verify_sas_token(_token(f"http://{NS}/hc1", key="other"), KEYS, f"http://{NS}/hc1", now=0)
    with pytest.raises(AuthenticationError, match="unknown SharedAccessKeyName"):
        verify_sas_token(_token(f"http://{NS}/hc1", key_name="nobody"), KEYS, f"http://{NS}/hc1", now=0)


def test_verify_expiry() -> None:
    token = _token(f"http://{NS}/hc1", expiry=1000)
    assert verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=999.9)
    for now in (1000, 1000.5, 5000):
        with pytest.raises(AuthenticationError, match="expired"):
            verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=now)


def test_verify_checks_signature_before_expiry() -> None:
    token = _token(f"http://{NS}/hc1", expiry=1000, key="wrong")
    with pytest.raises(AuthenticationError, match="signature"):
        verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=5000)


@pytest.mark.parametrize(
    "resource",
    [
        f"http://{NS}/hc1",
        f"http://{NS}:443/hc1",  # Node keeps the port of a wss:// listen URI
        f"sb://{NS}/hc1",  # Java listener
        f"sb://{NS}",  # Java client: namespace-scoped
        f"http://{NS}/",  # Node README: 'http://' + ns
        f"https://{NS}/hc1/",
        f"wss://{NS.upper()}/$hc/hc1",
        f"http://{NS}:80/HC1",
        f"ws://{NS}/hc1/",
    ],
)
def test_verify_audience_forms_microsoft_clients_send(resource: str) -> None:
    token = _token(resource)
    for wanted in (f"http://{NS}/hc1", f"https://{NS}:443/hc1/", f"sb://{NS}/hc1", f"wss://{NS}/$hc/hc1"):
        assert verify_sas_token(token, KEYS, wanted, now=0)
    # a token for the entity covers deeper paths too
    assert verify_sas_token(token, KEYS, f"http://{NS}/hc1/some/suffix", now=0)


@pytest.mark.parametrize(
    "resource, wanted",
    [
        (f"http://{NS}/hc1", f"http://{NS}/hc10"),  # prefix only on a segment boundary
        (f"http://{NS}/hc1", f"http://{NS}/hc"),
        (f"http://{NS}/hc1", f"http://{NS}/hc2"),
        (f"http://{NS}/hc1/suffix", f"http://{NS}/hc1"),
        (f"http://{NS}/hc1", "http://other.servicebus.windows.net/hc1"),
        (f"http://{NS}/hc1", f"http://{NS}:9350/hc1"),
        ("http://127.0.0.1:9350/hc1", "http://127.0.0.1:9351/hc1"),
        (f"http://{NS}/hc1", "not a uri"),
        ("ftp://ns/hc1", "http://ns/hc1"),
    ],
)
def test_verify_audience_mismatch(resource: str, wanted: str) -> None:
    with pytest.raises(AuthenticationError, match="audience"):
        verify_sas_token(_token(resource), KEYS, wanted, now=0)


def test_verify_emulator_audience_with_port() -> None:
    token = _token("http://127.0.0.1:9350/hc1")
    assert verify_sas_token(token, KEYS, "ws://127.0.0.1:9350/$hc/hc1", now=0)
    assert verify_sas_token(_token("http://127.0.0.1:9350/"), KEYS, "http://127.0.0.1:9350/hc2", now=0)


def test_verify_path_with_spaces_encoded_either_way() -> None:
    for resource in (f"http://{NS}/my%20hc", f"http://{NS}/my hc"):
        assert verify_sas_token(_token(resource), KEYS, f"http://{NS}/my%20hc", now=0)
        assert verify_sas_token(_token(resource), KEYS, f"wss://{NS}/$hc/my%20hc/x", now=0)


def test_verify_errors_never_echo_the_token() -> None:
    token = _token(f"http://{NS}/hc1", key="wrong")
    signature = parse_sas_token(token).signature
    with pytest.raises(AuthenticationError) as info:
        verify_sas_token(token, KEYS, f"http://{NS}/hc1", now=0)
    assert signature not in str(info.value) and token not in repr(info.value)


@pytest.mark.parametrize(
    "uri, expected",
    [
        (f"http://{NS}/hc1", (NS, "/hc1")),
        (f"http://{NS}:443/hc1", (NS, "/hc1")),
        (f"sb://{NS}/hc1", (NS, "/hc1")),
        (f"sb://{NS}", (NS, "/")),
        (f"wss://{NS.upper()}/$hc/hc1/", (NS, "/hc1")),
        ("http://127.0.0.1:9350/a//b/", ("127.0.0.1:9350", "/a/b")),
        ("http%3A%2F%2Fns%2Fhc1", ("ns", "/hc1")),
    ],
)
def test_normalize_audience(uri: str, expected: Tuple[str, str]) -> None:
    assert normalize_audience(uri) == expected


@pytest.mark.parametrize("uri", ["hc1", "ftp://ns/hc1", "http://", "http://ns:port/x"])
def test_normalize_audience_refuses(uri: str) -> None:
    with pytest.raises(ValueError):
        normalize_audience(uri)


# --------------------------------------------------------------------------------------
# Token providers


def test_shared_access_key_provider_caches_until_80_percent() -> None:
    clock = FakeClock(1_700_000_000.0)
    provider = SharedAccessKeyTokenProvider("root", KEY, ttl=3600, clock=clock)
    audience = f"http://{NS}/hc1"
    token, expires_on = provider.get_token(audience)
    assert expires_on == 1_700_003_600.0
    assert verify_sas_token(token, KEYS, audience, now=clock.now)
    clock.now += 0.8 * 3600 - 1
    assert provider.get_token(audience) == (token, expires_on)  # cached
    clock.now += 1  # the renewal point
    renewed, renewed_expiry = provider.get_token(audience)
    assert renewed != token and renewed_expiry == 1_700_000_000 + 0.8 * 3600 + 3600
    # each audience has its own token
    other, _ = provider.get_token(f"http://{NS}/hc2")
    assert parse_sas_token(other).audience == f"http://{NS}/hc2"
    assert provider(audience) == (renewed, renewed_expiry)  # callable too


def test_renewal_point() -> None:
    assert renewal_point(0, 3600) == 2880  # 80 %
    assert renewal_point(100, 200) == 170  # 30 s before expiry comes before 80 % here
    assert renewal_point(0, 10) == 5  # but never before half the token's life


def test_shared_access_key_provider_validates() -> None:
    with pytest.raises(ConfigurationError):
        SharedAccessKeyTokenProvider("", KEY)
    with pytest.raises(ConfigurationError):
        SharedAccessKeyTokenProvider("k", "")
    with pytest.raises(ConfigurationError):
        SharedAccessKeyTokenProvider("k", KEY, ttl=0)
    assert SharedAccessKeyTokenProvider("k", KEY).renewable


def test_static_token_provider_knows_expiry() -> None:
    token = _token(f"http://{NS}/hc1", expiry=1_800_000_000)
    provider = StaticTokenProvider("  " + token + " ")
    assert provider.expires_on == 1_800_000_000.0
    assert provider.get_token("ignored") == (token, 1_800_000_000.0)
    assert provider.renewable is False
    with pytest.raises(ConfigurationError, match="SharedAccessSignature"):
        StaticTokenProvider("SharedAccessSignature sr=x")


def test_callables_are_accepted() -> None:
    calls: List[str] = []

    def mint(audience: str) -> Tuple[str, float]:
        calls.append(audience)
        return "tok-" + audience, 42

    provider = as_token_provider(mint)
    assert isinstance(provider, CallableTokenProvider)
    assert provider.get_token("aud") == ("tok-aud", 42.0)
    assert calls == ["aud"]
    assert as_token_provider(None) is None
    existing = SharedAccessKeyTokenProvider("k", KEY)
    assert as_token_provider(existing) is existing
    assert as_token_provider(lambda a: ("t", 1)).get_token("x") == ("t", 1.0)  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError):
        as_token_provider("not callable")  # type: ignore[arg-type]


def test_token_provider_base_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        TokenProvider().get_token("x")


# --------------------------------------------------------------------------------------
# SasAuth


def test_sas_auth_sets_service_bus_authorization() -> None:
    clock = FakeClock(1_700_000_000.0)
    auth = SasAuth(SharedAccessKeyTokenProvider("root", KEY, clock=clock))
    prepared = requests.Request("POST", f"https://{NS}/hc1/x?y=1", data=b"body", auth=auth).prepare()
    assert AUTH_HEADER == "ServiceBusAuthorization"
    token = prepared.headers[AUTH_HEADER]
    assert "Authorization" not in prepared.headers
    parsed = verify_sas_token(token, KEYS, f"http://{NS}/hc1/x", now=clock.now)
    assert parsed.audience == f"http://{NS}/hc1/x"  # the request URL, without its query
    assert parsed.expiry == 1_700_003_600


def test_sas_auth_with_fixed_audience_and_callable() -> None:
    seen: List[str] = []

    def mint(audience: str) -> Tuple[str, float]:
        seen.append(audience)
        return "SharedAccessSignature sr=a&sig=b&se=1&skn=k", 1

    auth = SasAuth(mint, audience=f"http://{NS}/hc1")
    prepared = requests.Request("GET", f"https://{NS}/hc1/deep/path", auth=auth).prepare()
    assert prepared.headers[AUTH_HEADER] == "SharedAccessSignature sr=a&sig=b&se=1&skn=k"
    assert seen == [f"http://{NS}/hc1"]


def test_sas_auth_needs_a_provider_and_hides_the_key() -> None:
    with pytest.raises(ConfigurationError):
        SasAuth(None)
    auth = SasAuth(SharedAccessKeyTokenProvider("root", KEY))
    assert KEY not in repr(auth) and "root" in repr(auth)


def test_verify_compares_signatures_in_constant_time() -> None:
    # No timing assertion (too flaky on a shared machine): check the comparison is hmac.compare_digest.
    assert "compare_digest" in verify_sas_token.__code__.co_names


segment_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(segment_text, min_size=1, max_size=3),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16),
    st.integers(1, 4_000_000_000),
)
def test_property_minted_tokens_verify_for_their_entity_only(segments: List[str], key: str, expiry: int) -> None:
    path = "/".join(segments)
    audience = token_audience("ws://127.0.0.1:9350", path)
    token = generate_sas_token(audience, "rule", key, ttl=expiry, clock=lambda: 0)
    parsed = verify_sas_token(token, {"rule": key}, f"ws://127.0.0.1:9350/$hc/{quote(path)}/suffix", now=expiry - 1)
    assert parsed.expiry == expiry and normalize_audience(parsed.audience) == normalize_audience(audience)
    with pytest.raises(AuthenticationError, match="signature"):
        verify_sas_token(token, {"rule": key + "x"}, audience, now=0)
    with pytest.raises(AuthenticationError, match="audience"):
        verify_sas_token(token, {"rule": key}, f"http://127.0.0.1:9350/{quote(path)}x", now=0)
