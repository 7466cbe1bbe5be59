"""Pure URL work: relay URLs built and parsed back, namespaces, redaction."""

from __future__ import annotations

from typing import List, Tuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn.addresses import (
    HC_PREFIX,
    Namespace,
    check_entity_path,
    connect_url,
    http_url,
    listen_url,
    parse_address,
    redact,
    redact_url,
    reject_url,
    rendezvous_address,
    rendezvous_request_url,
    split_target,
    strip_relay_query,
    token_audience,
)
from hybridconn.auth import ConnectionString
from hybridconn.exceptions import ConfigurationError

FUZZ = settings(max_examples=200, deadline=None)
NS = "contoso.servicebus.windows.net"


# --------------------------------------------------------------------------------------
# Building


def test_listen_url() -> None:
    assert listen_url(NS, "hc1") == f"wss://{NS}/$hc/hc1?sb-hc-action=listen"
    assert listen_url(NS, "/hc1/", id="abc") == f"wss://{NS}/$hc/hc1?sb-hc-action=listen&sb-hc-id=abc"


def test_listen_url_with_token_in_query_is_encoded() -> None:
    url = listen_url(NS, "hc1", token="SharedAccessSignature sr=x&sig=a%2Bb&se=1&skn=k")
    query = urlsplit(url).query
    assert "sb-hc-token=SharedAccessSignature%20sr%3Dx%26sig%3Da%252Bb%26se%3D1%26skn%3Dk" in query
    assert dict(parse_qsl(query))["sb-hc-token"] == "SharedAccessSignature sr=x&sig=a%2Bb&se=1&skn=k"


def test_connect_url_with_suffix_query_and_id() -> None:
    url = connect_url(NS, "hc1", suffix="/a/b", query="x=1&y=two", id="my-id")
    assert url == f"wss://{NS}/$hc/hc1/a/b?x=1&y=two&sb-hc-action=connect&sb-hc-id=my-id"
    assert connect_url(NS, "hc1", suffix="a") == f"wss://{NS}/$hc/hc1/a?sb-hc-action=connect"
    assert connect_url(NS, "hc1", query={"k": "v"}) == f"wss://{NS}/$hc/hc1?k=v&sb-hc-action=connect"
    assert connect_url(NS, "hc1", query=[("k", "1"), ("k", "2")]) == (
        f"wss://{NS}/$hc/hc1?k=1&k=2&sb-hc-action=connect"
    )


def test_paths_and_suffixes_are_encoded() -> None:
    url = connect_url(NS, "my hc/\u00fc$x", suffix="/a b/$c?#%", query={"q": "1 2", "\u00e9": "$&="})
    assert url == (
        f"wss://{NS}/$hc/my%20hc/%C3%BC%24x/a%20b/%24c%3F%23%25"
        "?q=1%202&%C3%A9=%24%26%3D&sb-hc-action=connect"
    )
    # the "$hc" prefix itself stays literal
    assert "/$hc/" in url and url.count("$") == 1


def test_http_url() -> None:
    assert http_url(NS, "hc1") == f"https://{NS}/hc1"
    assert http_url(NS, "hc1", suffix="/s p/\u00fc$") == f"https://{NS}/hc1/s%20p/%C3%BC%24"
    assert http_url(NS, "hc1", query={"a": "b c"}) == f"https://{NS}/hc1?a=b%20c"
    assert "$hc" not in http_url(NS, "hc1")


def test_reject_url() -> None:
    address = f"wss://{NS}/$hc/hc1?sb-hc-action=accept&sb-hc-id=1"
    url = reject_url(address, 403, "Go away & don't \u00fc")
    assert url.startswith(address + "&")
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["sb-hc-statusCode"] == "403"
    assert params["sb-hc-statusDescription"] == "Go away & don't \u00fc"
    assert " " not in url
    assert reject_url(f"wss://{NS}/$hc/hc1", 400, "x") == f"wss://{NS}/$hc/hc1?sb-hc-statusCode=400&sb-hc-statusDescription=x"


def test_rendezvous_request_url_keeps_the_address_as_is() -> None:
    address = f"wss://{NS}/$hc/hc1?sb-hc-action=request&sb-hc-id=a+b%2Bc"
    assert rendezvous_request_url(address) == address
    # the action is ensured, every other parameter keeps its exact text
    assert rendezvous_request_url(f"wss://{NS}/$hc/hc1?sb-hc-id=a+b%2Bc&sb-hc-action=accept") == (
        f"wss://{NS}/$hc/hc1?sb-hc-id=a+b%2Bc&sb-hc-action=request"
    )
    assert rendezvous_request_url(f"wss://{NS}/$hc/hc1") == f"wss://{NS}/$hc/hc1?sb-hc-action=request"


@pytest.mark.parametrize("path", ["", "/", "//", None])
def test_empty_path_refused(path: object) -> None:
    with pytest.raises(ConfigurationError):
        listen_url(NS, path)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["", "/", "//", None, 7])
def test_check_entity_path_is_the_one_path_check(path: object) -> None:
    with pytest.raises(ConfigurationError, match="hybrid connection path must be a non-empty string"):
        check_entity_path(path)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="hybrid connection path must be a non-empty string"):
        http_url(NS, path)  # type: ignore[arg-type]


def test_check_entity_path_strips_slashes() -> None:
    assert check_entity_path("/team/hc1/") == "team/hc1"


def test_rendezvous_address_of_the_service() -> None:
    base = "ws://127.0.0.1:9350"
    assert rendezvous_address(base, "hc1", "accept", "k1") == f"{base}/{HC_PREFIX}/hc1?sb-hc-action=accept&sb-hc-id=k1"
    address = rendezvous_address(base, "my hc", "request", "a b/c", suffix="/x y", query="q=1&sb-hc-token=t&r=%2B")
    # the application's query verbatim (sb-hc-* dropped), the id quoted, path and suffix quoted
    assert address == f"{base}/$hc/my%20hc/x%20y?q=1&r=%2B&sb-hc-action=request&sb-hc-id=a%20b%2Fc"
    parsed = parse_address(address, "my hc")
    assert (parsed.path, parsed.suffix, parsed.query) == ("my hc", "/x y", "q=1&r=%2B")
    assert parsed.relay_param("sb-hc-id") == "a b/c" and parsed.relay_param("sb-hc-action") == "request"


@pytest.mark.parametrize("name", ["sb-hc-token", "SB-HC-ACTION", "sb-hc-id"])
def test_application_query_may_not_use_relay_names(name: str) -> None:
    with pytest.raises(ConfigurationError, match="reserved"):
        connect_url(NS, "hc1", query={name: "x"})


def test_token_audience() -> None:
    assert token_audience(NS, "hc1") == f"http://{NS}/hc1"
    assert token_audience(NS) == f"http://{NS}/"
    assert token_audience("ws://127.0.0.1:9350", "/hc1/") == "http://127.0.0.1:9350/hc1"
    assert token_audience(NS, "my hc") == f"http://{NS}/my%20hc"


# --------------------------------------------------------------------------------------
# Parsing back


def test_parse_address() -> None:
    address = f"wss://{NS}:443/$hc/hc1/some/suffix?a=1&sb-hc-action=accept&sb-hc-id=xyz&b=%20&SB-HC-TOKEN=t"
    parsed = parse_address(address, "hc1")
    assert parsed.scheme == "wss"
    assert parsed.authority == f"{NS}:443"
    assert parsed.path == "hc1"
    assert parsed.suffix == "/some/suffix"
    assert parsed.query == "a=1&b=%20"
    assert parsed.relay_param("sb-hc-id") == "xyz"
    assert parsed.relay_param("sb-hc-action") == "accept"
    assert parsed.relay_param("nope") is None
    # without knowing the name, the first segment is taken
    assert parse_address(address).path == "hc1"
    assert parse_address(address).suffix == "/some/suffix"


def test_parse_address_with_multi_segment_name() -> None:
    parsed = parse_address(f"wss://{NS}/$hc/team/hc1/x?sb-hc-action=accept", "team/hc1")
    assert (parsed.path, parsed.suffix, parsed.query) == ("team/hc1", "/x", "")


def test_strip_relay_query_and_split_target() -> None:
    assert strip_relay_query("") == ""
    assert strip_relay_query("sb-hc-action=x&a=1&Sb-Hc-Id=2&sb%2Dhc%2Dtoken=3&b") == "a=1&b"
    assert split_target("/hc1/a%20b?x=1&sb-hc-token=zz&y=2", "hc1") == ("/a b", "x=1&y=2")
    assert split_target("/hc1", "hc1") == ("", "")
    assert split_target("/hc1/?q", "hc1") == ("/", "q")


path_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="/")
segments = st.text(path_chars, min_size=1, max_size=8)
names = st.lists(segments, min_size=1, max_size=3).map("/".join)
suffixes = st.lists(segments, max_size=3).map(lambda parts: "".join("/" + p for p in parts))
query_pairs = st.lists(
    st.tuples(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8).filter(
            lambda k: not k.lower().startswith("sb-hc-")
        ),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    ),
    max_size=4,
)


@FUZZ
@given(names, suffixes, query_pairs, st.booleans(), st.text(max_size=10))
def test_round_trip_build_then_parse(name: str, suffix: str, query: List[Tuple[str, str]], listen: bool,
                                     conn_id: str) -> None:
    if listen:
        url = listen_url("ws://127.0.0.1:9350", name, id=conn_id or None, token="SharedAccessSignature x")
        suffix, query = "", []
    else:
        url = connect_url("ws://127.0.0.1:9350", name, suffix=suffix, query=query, id=conn_id or None,
                          token="SharedAccessSignature x")
    parsed = parse_address(url, name)
    assert parsed.path == name
    assert parsed.suffix == suffix
    assert parse_qsl(parsed.query, keep_blank_values=True) == query
    # no relay parameter left in the application's query (a *value* may well contain "sb-hc-")
    assert not any(key.lower().startswith("sb-hc-") for key, _ in parse_qsl(parsed.query, keep_blank_values=True))
    assert parsed.relay_param("sb-hc-action") == ("listen" if listen else "connect")
    assert parsed.relay_param("sb-hc-id") == (conn_id or None)
    assert parsed.relay_param("sb-hc-token") == "SharedAccessSignature x"
    # the URL itself is plain ASCII with no raw spaces
    assert url.isascii() and " " not in url


@FUZZ
@given(names, suffixes, query_pairs)
def test_round_trip_http_url_and_split_target(name: str, suffix: str, query: List[Tuple[str, str]]) -> None:
    url = http_url("http://127.0.0.1:9350", name, suffix=suffix, query=query)
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "127.0.0.1:9350"
    target = parts.path + ("?" + parts.query if parts.query else "")
    got_suffix, got_query = split_target(target, name)
    assert got_suffix == suffix
    assert parse_qsl(got_query, keep_blank_values=True) == query
    assert unquote(parts.path) == "/" + name + suffix


@FUZZ
@given(names, suffixes, query_pairs, st.sampled_from(["accept", "request"]), st.text(min_size=1, max_size=10))
def test_round_trip_rendezvous_address(name: str, suffix: str, query: List[Tuple[str, str]], action: str,
                                       key: str) -> None:
    raw_query = urlencode(query + [("sb-hc-token", "x")], quote_via=quote)
    address = rendezvous_address("wss://relay:443", name, action, key, suffix=suffix, query=raw_query)
    parsed = parse_address(address, name)
    assert parsed.path == name and parsed.suffix == suffix
    assert parse_qsl(parsed.query, keep_blank_values=True) == query
    assert parsed.relay_param("sb-hc-action") == action and parsed.relay_param("sb-hc-id") == key
    assert parsed.relay_param("sb-hc-token") is None
    assert address.isascii() and " " not in address


# --------------------------------------------------------------------------------------
# Namespaces: Azure vs the development emulator


def test_namespace_host_name_is_secure_on_443() -> None:
    ns = Namespace.parse(NS)
    assert (ns.host, ns.port, ns.secure) == (NS, None, True)
    assert ns.ws_base == f"wss://{NS}" and ns.http_base == f"https://{NS}"
    assert ns.effective_port == 443 and str(ns) == f"wss://{NS}"


@pytest.mark.parametrize(
    "text, ws_base, http_base",
    [
        ("ws://127.0.0.1:9350", "ws://127.0.0.1:9350", "http://127.0.0.1:9350"),
        ("http://localhost:8080/", "ws://localhost:8080", "http://localhost:8080"),
        ("wss://Relay.Example:8443", "wss://relay.example:8443", "https://relay.example:8443"),
        ("wss://relay.example:443", "wss://relay.example", "https://relay.example"),
        ("ws://relay.example:80", "ws://relay.example", "http://relay.example"),
        ("sb://relay.example/", "wss://relay.example", "https://relay.example"),
        ("ws://[::1]:9350", "ws://[::1]:9350", "http://[::1]:9350"),
        ("  contoso.servicebus.windows.net  ", f"wss://{NS}", f"https://{NS}"),
    ],
)
def test_namespace_base_urls(text: str, ws_base: str, http_base: str) -> None:
    ns = Namespace.parse(text)
    assert (ns.ws_base, ns.http_base) == (ws_base, http_base)
    assert Namespace.parse(ns) is ns


@pytest.mark.parametrize("text", ["", "   ", "ftp://x", "ws://", "ws://host:notaport", None])
def test_namespace_refuses_garbage(text: object) -> None:
    with pytest.raises(ConfigurationError):
        Namespace.parse(text)  # type: ignore[arg-type]


def test_development_emulator_connection_string_uses_plain_ws_and_http_to_host_port() -> None:
    cs = ConnectionString.parse(
        "Endpoint=sb://127.0.0.1:9350/;SharedAccessKeyName=k;SharedAccessKey=s;"
        "EntityPath=hc1;UseDevelopmentEmulator=true"
    )
    ns = cs.namespace
    assert (ns.ws_base, ns.http_base, ns.effective_port) == ("ws://127.0.0.1:9350", "http://127.0.0.1:9350", 9350)
    assert listen_url(ns, cs.resolve_path(None)) == "ws://127.0.0.1:9350/$hc/hc1?sb-hc-action=listen"
    assert http_url(ns, "hc1", suffix="/x") == "http://127.0.0.1:9350/hc1/x"


def test_azure_connection_string_uses_wss_and_https_on_443() -> None:
    for flag in ("", ";UseDevelopmentEmulator=false"):
        cs = ConnectionString.parse(f"Endpoint=sb://{NS}/;SharedAccessKeyName=k;SharedAccessKey=s{flag}")
        ns = cs.namespace
        assert (ns.ws_base, ns.http_base, ns.effective_port) == (f"wss://{NS}", f"https://{NS}", 443)
        assert listen_url(ns, "hc1") == f"wss://{NS}/$hc/hc1?sb-hc-action=listen"
        assert http_url(ns, "hc1") == f"https://{NS}/hc1"


# --------------------------------------------------------------------------------------
# Redaction


def test_redact_url_hides_token_and_signature() -> None:
    url = listen_url(NS, "hc1", token="SharedAccessSignature sr=http%3A%2F%2Fx&sig=SIGVALUE%3D&se=9&skn=root")
    shown = redact_url(url)
    assert "SIGVALUE" not in shown and "sb-hc-token=<redacted>" in shown
    assert shown.startswith(f"wss://{NS}/$hc/hc1?sb-hc-action=listen&")
    assert redact_url(f"https://{NS}/hc1?sig=ABC&se=1&x=2") == f"https://{NS}/hc1?sig=<redacted>&se=1&x=2"
    assert redact_url(f"https://{NS}/hc1?SB-HC-TOKEN=abc") == f"https://{NS}/hc1?SB-HC-TOKEN=<redacted>"
    # a URL without secrets is left alone
    plain = connect_url(NS, "hc1", suffix="/a", query="x=1")
    assert redact_url(plain) == plain
    assert redact_url("") == ""


@pytest.mark.parametrize(
    "text",
    [
        "ServiceBusAuthorization: SharedAccessSignature sr=a&sig=SECRET&se=1&skn=k",
        "wss://h/$hc/hc1?sb-hc-token=SharedAccessSignature%20sr%3Da%26sig%3DSECRET%26se%3D1",
        "https://h/?next=wss%3A%2F%2Fh%3Fsb-hc-token%3DSharedAccessSignature%2520sig%253DSECRET",
        "token=SharedAccessSignature%20sr%3Da%26sig%3DSECRET",
        "Endpoint=sb://h/;SharedAccessKeyName=k;SharedAccessKey=SECRET=;EntityPath=e",
        "SharedAccessSignature=SharedAccessSignature sr=a&sig=SECRET&se=1&skn=k",
        "{'sig': 'x', \"sig=SECRET\"}",
    ],
)
def test_redact_hides_secrets_in_any_text(text: str) -> None:
    assert "SECRET" not in redact(text)
