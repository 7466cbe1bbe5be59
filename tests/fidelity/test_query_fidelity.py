"""Query strings arrive as sent (Microsoft's QueryString test table, HybridRequestTests.cs): the client
never rewrites them and the relay strips only ``sb-hc-*=value`` pairs."""

from __future__ import annotations

import string
from typing import Any, Iterator, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridconn import HybridConnection, HybridConnectionListener, RelayedRequest, RelayedResponse
from hybridconn.addresses import strip_relay_query
from hybridconn.exceptions import ConfigurationError
from tests.support.endpoints import make_client, make_listener

# Written as-is in a URL (RFC 3986 query characters, '#' aside); requests passes them through.
_PLAIN = string.ascii_letters + string.digits + "-._~!$'()*+,;=:@/?"
# requests turns %XX of an unreserved character into the character and upper-cases the hex digits
# (RFC 3986 6.2.2 calls both equivalent; the service too turns %b8 into %B8, Microsoft's table), so
# percent-escapes are drawn from upper-case escapes of characters that must stay escaped.
_ESCAPES = st.sampled_from(["%20", "%22", "%25", "%26", "%3D", "%B8", "%E2%82%AC", "%2F", "%23"])
_ITEM = st.lists(st.one_of(st.text(_PLAIN, min_size=1, max_size=6), _ESCAPES), max_size=4).map("".join)
QUERIES = st.lists(_ITEM, min_size=1, max_size=5).map("&".join).filter(
    lambda q: q == strip_relay_query(q) and q != "")


@pytest.fixture
def echo_query(relay: Any) -> Iterator[HybridConnectionListener]:
    listener = make_listener(relay)

    def handler(request: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=request.query.encode("utf-8"), headers={"X-Target": request.target})

    def on_connection(conn: HybridConnection) -> None:
        conn.send(conn.query)

    listener.on_request = handler
    listener.on_connection = on_connection
    with listener:
        listener.open(timeout=15)
        yield listener


@pytest.mark.parametrize("query", ["flag", "20", "a=1;b=2", "&&&", "a=1&a=2&", "&foo=bar", "sb-hc-undefined",
                                   "CustomValue", "custom&value", "%B8", "k=%E2%82%AC", "?", "?a=1", "a?b"])
def test_the_issues_queries_arrive_as_sent(relay: Any, echo_query: HybridConnectionListener, query: str) -> None:
    with make_client(relay) as client:
        response = client.request("GET", f"/x?{query}", timeout=15)
        assert response.content.decode() == query
        assert response.headers["X-Target"] == f"/hc1/x?{query}"
        with client.connect(suffix=f"/x?{query}", timeout=15) as conn:
            assert conn.recv(timeout=15) == query


def test_lower_case_escapes_arrive_upper_cased_as_on_the_service(relay: Any,
                                                                 echo_query: HybridConnectionListener) -> None:
    with make_client(relay) as client:
        assert client.request("GET", "/x?%b8", timeout=15).content == b"%B8"


@pytest.mark.parametrize("sent, kept", [("sb-hc-id=1", ""), ("sb-hc-id=1&custom=value", "custom=value"),
                                        ("custom=value&sb-hc-id=1", "custom=value"), ("sb-hc-whatever=", ""),
                                        ("sb-hc-whatever=&foo=bar", "foo=bar"), ("?&&&", "?&&&"),
                                        ("sb-hc-undefined", "sb-hc-undefined")])
def test_the_relay_strips_only_sb_hc_pairs(sent: str, kept: str) -> None:
    assert strip_relay_query(sent) == kept


def test_the_client_refuses_sb_hc_pairs_but_sends_a_bare_sb_hc_name(relay: Any) -> None:
    with make_client(relay) as client:
        with pytest.raises(ConfigurationError, match="sb-hc-id"):
            client.http_url("/x?sb-hc-id=1")
        assert client.http_url("/x?sb-hc-undefined").endswith("/x?sb-hc-undefined")


def test_characters_a_url_cannot_carry_are_encoded_not_dropped(relay: Any,
                                                               echo_query: HybridConnectionListener) -> None:
    with make_client(relay) as client:
        assert client.request("GET", '/x?k=<a "b">', timeout=15).content == b"k=%3Ca%20%22b%22%3E"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_any_query_arrives_byte_identical(relay: Any, echo_query: HybridConnectionListener, query: str) -> None:
    with make_client(relay) as client:
        assert client.request("GET", f"/p?{query}", timeout=15).content.decode() == query


def test_query_pairs_are_form_encoded_after_the_written_query(relay: Any,
                                                              echo_query: HybridConnectionListener) -> None:
    with make_client(relay) as client:
        url = client.http_url("/x?flag", query=[("a", "1 2")])
        assert url.endswith("/x?flag&a=1%202")
        sent: List[str] = [client.request("GET", "/x?flag", params=None, timeout=15).content.decode()]
        assert sent == ["flag"]
