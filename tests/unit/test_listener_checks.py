"""The listener's per-request checks, rewritten for speed (issue 20), decide as the rules they stand for.

- A response header name must be an RFC 7230 token, a value must hold no line break or NUL and
  fit latin-1 (``responder._unsendable_header``).
- A ``remoteEndpoint`` address is kept only when every character is a letter, a digit or one
  of ``._:[]%-`` (``handling.remote_address``), as the earlier character-by-character test said.
- The standard reason phrase is ``http.HTTPStatus``'s, and the default for any other code.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Optional

from hypothesis import given
from hypothesis import strategies as st

from hybridconn._listener.handling import remote_address
from hybridconn._listener.responder import _unsendable_header
from hybridconn._protocol.status import standard_phrase

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _why(name: str, value: str = "v") -> Optional[str]:
    found = _unsendable_header({name: value})
    return None if found is None else found[1]


def test_token_names_and_latin1_values_are_sendable() -> None:
    assert _why("Content-Type", "text/plain; charset=utf-8") is None
    assert _why(TOKEN_CHARS, 'attachment; filename="café.txt"') is None


def test_a_name_outside_the_token_characters_is_refused() -> None:
    for name in ["", "Bad Name", "a:b", "x\r\ny", "x\x01", "x\x7f", "caf\u00e9", 'q"', "(a)", "a/b", "{x}"]:
        assert _why(name) == "not a valid header name", name


def test_a_value_with_a_line_break_or_nul_or_beyond_latin1_is_refused() -> None:
    assert _why("X", "a\rb") == "its value has a line break"
    assert _why("X", "a\nb") == "its value has a line break"
    assert _why("X", "a\0b") == "its value has a line break"
    assert _why("X", "5\u20ac") == "its value has characters beyond latin-1"


@given(st.text(min_size=1, max_size=8))
def test_any_name_is_refused_exactly_when_it_is_not_a_token(name: str) -> None:
    is_token = all(ch in TOKEN_CHARS for ch in name)
    assert (_why(name) is None) == is_token


@given(st.text(max_size=70))
def test_an_address_is_kept_by_the_character_rule(address: str) -> None:
    allowed = 0 < len(address) <= 64 and all(ch.isalnum() or ch in ".:[]%-_" for ch in address)
    kept = remote_address({"remoteEndpoint": {"address": address, "port": 1}})
    assert kept == (address if allowed else None)


def test_addresses_as_the_service_sends_them() -> None:
    for address in ["127.0.0.1", "::1", "[fe80::1%eth0]", "sender-host_1.example"]:
        assert remote_address({"remoteEndpoint": {"address": address}}) == address
    for address in ["1.2.3.4 ", "a/b", "<script>", "x" * 65]:
        assert remote_address({"remoteEndpoint": {"address": address}}) is None


@given(st.integers(min_value=-5, max_value=1000))
def test_the_standard_phrase_is_httpstatus_phrase(status: int) -> None:
    try:
        expected = HTTPStatus(status).phrase
    except ValueError:
        expected = "fallback"
    assert standard_phrase(status, "fallback") == expected
