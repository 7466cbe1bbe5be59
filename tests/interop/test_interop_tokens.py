"""Scenario 6, offline part: hybridconn's SAS tokens against hyco-ws/hyco-https createRelayToken.

The Node side is the packages' own createRelayToken (peers/tokens.js), with Date.now
pinned so both sides sign the same expiry. Every comparison is byte for byte.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote

import pytest

from hybridconn.addresses import connect_url, http_url, listen_url, token_audience
from hybridconn.auth import (
    SharedAccessKeyTokenProvider,
    generate_sas_token,
    parse_sas_token,
    verify_sas_token,
)
from hybridconn.exceptions import AuthenticationError
from tests.support.node_peers import requires_node, run_node

pytestmark = [pytest.mark.interop, requires_node]

LOCAL = "ws://127.0.0.1:9480"
CLOUD = "contoso.servicebus.windows.net"
PACKAGES = ("hyco-ws", "hyco-https")

# (case id, how Node gets its URI, the resource hybridconn signs for the same thing)
# The URIs are the ones each side really uses: hybridconn's own listen/connect/http URLs
# handed to createRelayToken, and the packages' helpers for a cloud namespace.
URI_CASES: List[Tuple[str, Dict[str, str], str]] = [
    ("local-listen", {"uri": listen_url(LOCAL, "hc1")}, token_audience(LOCAL, "hc1")),
    ("local-connect", {"uri": connect_url(LOCAL, "hc1")}, token_audience(LOCAL, "hc1")),
    ("local-http", {"uri": http_url(LOCAL, "hc1")}, token_audience(LOCAL, "hc1")),
    (
        "local-suffix",
        {"uri": connect_url(LOCAL, "hc1", suffix="a/b", query={"x": "1"})},
        token_audience(LOCAL, "hc1/a/b"),
    ),
    ("local-nested-path", {"uri": listen_url(LOCAL, "team/orders")}, token_audience(LOCAL, "team/orders")),
    # A space in the path ends up double-encoded (%2520) on both sides.
    ("local-space", {"uri": listen_url(LOCAL, "my hc")}, token_audience(LOCAL, "my hc")),
    ("cloud-https-helper", {"helper": "https", "ns": CLOUD, "path": "hc1"}, token_audience(CLOUD, "hc1")),
    ("cloud-namespace", {"uri": "http://" + CLOUD}, token_audience(CLOUD)),
    # createRelayListenUri/SendUri put :443 in the URI and createRelayToken keeps it
    # (hyco-ws/index.js:72-74, url.format prefers .host): a different sr than ours,
    # so only the signing is compared here; the audience match is tested below.
    ("cloud-listen-helper", {"helper": "listen", "ns": CLOUD, "path": "hc1"}, "http://" + CLOUD + ":443/hc1"),
    ("cloud-send-helper", {"helper": "send", "ns": CLOUD, "path": "hc1"}, "http://" + CLOUD + ":443/hc1"),
]

# (key name, key, pinned Date.now in ms, expirationSeconds or None for the default)
SIGNING_CASES: List[Tuple[str, str, int, Optional[int]]] = [
    ("RootManageSharedAccessKey", "0aJ/cAbC+k3yBase64Looking+Key/NotDecoded=", 1700000000123, None),
    ("send-only", "plain key with spaces", 1700000000999, 1),
    ("listen_rule", "k\u00e9y-\u00fcnicode", 1600000000000, 86400 * 365),
]


def _case_key(package: str, uri_case: str, signing_index: int) -> str:
    return f"{package}|{uri_case}|{signing_index}"


@pytest.fixture(scope="module")
def node_tokens() -> Dict[str, Dict[str, str]]:
    """Every (package, URI, signing) combination, minted by one node run."""
    requests: List[Dict[str, Any]] = []
    keys: List[str] = []
    for package in PACKAGES:
        for case_id, uri_spec, _ in URI_CASES:
            for index, (key_name, key, now_ms, expiration) in enumerate(SIGNING_CASES):
                request: Dict[str, Any] = dict(uri_spec, pkg=package, keyName=key_name, key=key, nowMs=now_ms)
                if expiration is not None:
                    request["expirationSeconds"] = expiration
                requests.append(request)
                keys.append(_case_key(package, case_id, index))
    answers = json.loads(run_node("tokens.js", stdin=requests))
    assert len(answers) == len(keys)
    return dict(zip(keys, answers))


@pytest.mark.parametrize("signing_index", range(len(SIGNING_CASES)))
@pytest.mark.parametrize("uri_case", [c[0] for c in URI_CASES])
@pytest.mark.parametrize("package", PACKAGES)
def test_generate_sas_token_equals_create_relay_token(
    node_tokens: Dict[str, Dict[str, str]], package: str, uri_case: str, signing_index: int
) -> None:
    _, _, resource = next(c for c in URI_CASES if c[0] == uri_case)
    key_name, key, now_ms, expiration = SIGNING_CASES[signing_index]
    ttl = 3600 if expiration is None else expiration  # createRelayToken's default (index.js:76-79)
    node = node_tokens[_case_key(package, uri_case, signing_index)]

    ours = generate_sas_token(resource, key_name, key, ttl=ttl, clock=lambda: now_ms / 1000.0)
    assert ours == node["token"], f"uri given to createRelayToken: {node['uri']}"

    # What the listener and client actually send: the provider's token for the audience.
    provider = SharedAccessKeyTokenProvider(key_name, key, ttl=ttl, clock=lambda: now_ms / 1000.0)
    assert provider.get_token(resource)[0] == node["token"]


def test_create_relay_token_forms_are_as_documented(node_tokens: Dict[str, Dict[str, str]]) -> None:
    """The sr forms these clients produce (node-clients-on-the-wire.md), pinned."""
    sr = {
        case: parse_sas_token(node_tokens[_case_key("hyco-ws", case, 0)]["token"]).audience for case, _, _ in URI_CASES
    }
    assert sr["local-listen"] == "http://127.0.0.1:9480/hc1"
    assert sr["local-connect"] == "http://127.0.0.1:9480/hc1"
    assert sr["local-http"] == "http://127.0.0.1:9480/hc1"
    assert sr["local-suffix"] == "http://127.0.0.1:9480/hc1/a/b"
    assert sr["local-space"] == "http://127.0.0.1:9480/my%20hc"
    assert sr["cloud-https-helper"] == "http://contoso.servicebus.windows.net/hc1"
    assert sr["cloud-namespace"] == "http://contoso.servicebus.windows.net/"
    assert sr["cloud-listen-helper"] == "http://contoso.servicebus.windows.net:443/hc1"
    assert sr["cloud-send-helper"] == "http://contoso.servicebus.windows.net:443/hc1"
    # The raw sr stays percent-encoded with upper-case hex, the signature is encodeURIComponent'd.
    raw = node_tokens[_case_key("hyco-https", "local-space", 0)]["token"]
    assert "sr=http%3A%2F%2F127.0.0.1%3A9480%2Fmy%2520hc&" in raw


# Each Node sr form, and the resource the service (and our emulator) checks it against.
VERIFY_CASES = [
    ("local-listen", "http://127.0.0.1:9480/hc1"),
    ("local-http", "http://127.0.0.1:9480/hc1"),
    ("local-nested-path", "http://127.0.0.1:9480/team/orders"),
    ("cloud-https-helper", "sb://contoso.servicebus.windows.net/hc1"),
    ("cloud-listen-helper", "sb://contoso.servicebus.windows.net/hc1"),
    ("cloud-send-helper", "https://contoso.servicebus.windows.net/hc1"),
    # Namespace-scoped: covers every entity (prefix semantics).
    ("cloud-namespace", "sb://contoso.servicebus.windows.net/hc1"),
    ("cloud-namespace", "sb://contoso.servicebus.windows.net/other/entity"),
]


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("uri_case,audience", VERIFY_CASES)
def test_verify_sas_token_accepts_every_node_form(
    node_tokens: Dict[str, Dict[str, str]], package: str, uri_case: str, audience: str
) -> None:
    key_name, key, now_ms, _ = SIGNING_CASES[0]
    token = node_tokens[_case_key(package, uri_case, 0)]["token"]
    parsed = verify_sas_token(token, {key_name: key}, audience, now=now_ms / 1000.0)
    assert parsed.key_name == key_name


@pytest.mark.parametrize(
    "uri_case,audience,keys,now_offset",
    [
        ("local-listen", "http://127.0.0.1:9480/hc2", None, 0),  # another entity
        ("local-listen", "http://127.0.0.1:9481/hc1", None, 0),  # another port is another host
        ("cloud-https-helper", "sb://fabrikam.servicebus.windows.net/hc1", None, 0),
        ("local-listen", "http://127.0.0.1:9480/hc1", {"RootManageSharedAccessKey": "wrong"}, 0),
        ("local-listen", "http://127.0.0.1:9480/hc1", {"other-rule": "x"}, 0),
        ("local-listen", "http://127.0.0.1:9480/hc1", None, 3600),  # at se: expired
    ],
)
def test_verify_sas_token_refuses_node_tokens_it_must_refuse(
    node_tokens: Dict[str, Dict[str, str]],
    uri_case: str,
    audience: str,
    keys: Optional[Dict[str, str]],
    now_offset: int,
) -> None:
    key_name, key, now_ms, _ = SIGNING_CASES[0]
    token = node_tokens[_case_key("hyco-ws", uri_case, 0)]["token"]
    with pytest.raises(AuthenticationError) as info:
        verify_sas_token(token, keys or {key_name: key}, audience, now=now_ms / 1000.0 + now_offset)
    assert info.value.status_code == 401
    assert key not in str(info.value) and "sig=" not in str(info.value)
    assert unquote(parse_sas_token(token).signature) not in str(info.value)
