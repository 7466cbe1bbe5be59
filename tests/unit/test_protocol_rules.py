"""The protocol's shared rules: statuses a listener may send, reason phrases, sizes, header lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn.exceptions import ProtocolError
from hybridconn.protocol import (
    FRAGMENT_SIZE,
    HEADER_METADATA_LIMIT,
    RELAY_STATUSES,
    Response,
    fits_control_channel,
    header_metadata_size,
    header_value,
    is_printable_reason,
    is_relay_status,
    listener_may_send,
    parse_subprotocols,
    printable_reason,
    standard_phrase,
    status_description,
    status_problem,
)

FUZZ = settings(max_examples=200, deadline=None)


# --------------------------------------------------------------------------------------
# Statuses


@pytest.mark.parametrize("status", [200, 204, 301, 404, 500, 501, 503, 599])
def test_a_listener_may_send_final_statuses(status: int) -> None:
    assert listener_may_send(status) and status_problem(status) is None
    Response(request_id="r", status_code=status)  # and the message can be built


@pytest.mark.parametrize("status", [502, 504])
def test_502_and_504_are_the_relays_own(status: int) -> None:
    assert status in RELAY_STATUSES and is_relay_status(status)
    assert not listener_may_send(status)
    assert "reserved for the relay" in (status_problem(status) or "")
    with pytest.raises(ProtocolError, match="reserved for the relay"):
        Response(request_id="r", status_code=status)


@pytest.mark.parametrize("status", [100, 101, 199])
def test_1xx_is_not_a_final_response(status: int) -> None:
    assert not listener_may_send(status) and not is_relay_status(status)
    assert "not a final response" in (status_problem(status) or "")
    # it still parses (the relay must see it to refuse it), but may not be answered with
    assert Response(request_id="r", status_code=status).status_code == status


@pytest.mark.parametrize("status", [0, 99, 600, 1000])
def test_out_of_range_statuses(status: int) -> None:
    assert not listener_may_send(status)
    assert "outside 100-599" in (status_problem(status) or "")


def test_standard_phrase() -> None:
    assert standard_phrase(404) == "Not Found"
    assert standard_phrase(299) == "" and standard_phrase(299, "Rejected") == "Rejected"


@pytest.mark.parametrize("text, printable", [("OK", True), ("Two\twords", True), ("", True),
                                             ("Gr\u00fc\u00dfe", False), ("a\r\nb", False), ("\x7f", False)])
def test_printable_reason(text: str, printable: bool) -> None:
    assert is_printable_reason(text) is printable
    fixed = printable_reason(text)
    assert is_printable_reason(fixed) and len(fixed) == len(text)
    assert (fixed == text) is printable


def test_printable_reason_is_bounded() -> None:
    assert printable_reason("x" * 5000) == "x" * 1024
    assert printable_reason("\u00e9" * 10, limit=4) == "????"


def test_status_description_falls_back_to_the_standard_phrase() -> None:
    assert status_description(200, "Fine") == "Fine"
    assert status_description(200, None) is None
    assert status_description(404, "Nicht gefunden \u2013 leider") == "Not Found"
    assert status_description(299, "\u2013") is None  # no standard phrase either


@FUZZ
@given(st.text(max_size=50))
def test_printable_reason_always_printable(text: str) -> None:
    assert is_printable_reason(printable_reason(text))
    assert is_printable_reason(text) == all(" " <= ch <= "~" or ch == "\t" for ch in text)


# --------------------------------------------------------------------------------------
# Sizes


def test_fragment_size() -> None:
    assert FRAGMENT_SIZE == 64 * 1024


def test_header_metadata_size_counts_text_and_raw_bytes_alike() -> None:
    text = {"Host": "example", "X-Name": "Gr\u00fc\u00dfe"}
    raw = [(b"Host", b"example"), (b"X-Name", "Gr\u00fc\u00dfe".encode("utf-8"))]
    expected = (4 + 7 + 4) + (6 + len("Gr\u00fc\u00dfe".encode("utf-8")) + 4)
    assert header_metadata_size(text) == header_metadata_size(raw) == header_metadata_size(list(text.items())) == expected


def test_fits_control_channel_takes_pairs_too() -> None:
    assert fits_control_channel(10, [("A", "b")])
    assert not fits_control_channel(10, [(b"X-Big", b"v" * HEADER_METADATA_LIMIT)])


# --------------------------------------------------------------------------------------
# Header lists


@pytest.mark.parametrize(
    "value, expected",
    [(None, ()), ("", ()), ("chat", ("chat",)), ("chat, superchat", ("chat", "superchat")),
     (" a ,, b ,", ("a", "b")), (",", ())],
)
def test_parse_subprotocols(value: str, expected: tuple) -> None:
    assert parse_subprotocols(value) == expected


def test_header_value_is_case_insensitive() -> None:
    headers = {"Sec-WebSocket-Protocol": "chat", "X-A": "1"}
    assert header_value(headers, "Sec-WebSocket-Protocol") == "chat"
    assert header_value(headers, "sec-websocket-protocol") == "chat"
    assert header_value(headers, "x-b") is None
