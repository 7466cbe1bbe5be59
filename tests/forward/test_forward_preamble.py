"""The azbridge v1.0 preamble codec, fed the byte sequences from the reference (azbridge-anchor.md §2.2, §2.11)."""

from __future__ import annotations

from typing import List, Optional

import pytest

from hybridconn.exceptions import ConfigurationError, ProtocolError
from hybridconn.forward.preamble import (
    MODE_DATAGRAM,
    MODE_STREAM,
    REPLY_NOT_DATAGRAM,
    REPLY_NOT_STREAM,
    REPLY_UNSUPPORTED,
    Preamble,
    PreambleError,
    PreambleParser,
    PreambleRejected,
    ReplyParser,
    UnsupportedPreamble,
    accept_reply,
    check_reply,
    encode_preamble,
    match_port_name,
    reply_for,
    validate_port_name,
)

# The reference's test vectors, sender -> listener.
TCP_16161 = bytes.fromhex("01 00 00 05 31 36 31 36 31")  # -L 16161:db
TCP_SQL1 = bytes.fromhex("01 00 00 04 73 71 6C 31")  # -L 127.0.0.8:1433/sql1:db
UDP_5000U = bytes.fromhex("01 00 01 05 35 30 30 30 55")  # -L 5000U:relay
UNKNOWN_X = bytes.fromhex("01 00 00 01 78")  # unknown name "x"


def splits(data: bytes) -> List[List[bytes]]:
    """``data`` as one chunk, split at every single boundary, and byte by byte."""
    ways = [[data]]
    ways += [[data[:i], data[i:]] for i in range(1, len(data))]
    ways.append([data[i : i + 1] for i in range(len(data))])
    return ways


def feed_all(parser: PreambleParser, chunks: List[bytes]) -> Optional[Preamble]:
    result = None
    for index, chunk in enumerate(chunks):
        result = parser.feed(chunk)
        if index < len(chunks) - 1:
            assert result is None, f"complete too early after chunk {index}"
    return result


# ---------------------------------------------------------------- sender encodes


@pytest.mark.parametrize(
    "name, mode, expected",
    [
        ("16161", MODE_STREAM, TCP_16161),
        ("sql1", MODE_STREAM, TCP_SQL1),
        ("5000U", MODE_DATAGRAM, UDP_5000U),
        ("x", MODE_STREAM, UNKNOWN_X),
    ],
)
def test_encode_matches_reference_vectors(name: str, mode: int, expected: bytes) -> None:
    assert encode_preamble(name, mode) == expected


def test_encode_refuses_oversized_name_and_bad_mode() -> None:
    with pytest.raises(ConfigurationError):
        encode_preamble("a" * 256)
    assert encode_preamble("a" * 255)[3] == 255
    with pytest.raises(ValueError):
        encode_preamble("x", mode=2)


def test_replies_match_reference() -> None:
    assert accept_reply(MODE_STREAM) == bytes.fromhex("01 00 00")
    assert accept_reply(MODE_DATAGRAM) == bytes.fromhex("01 00 01")
    assert REPLY_UNSUPPORTED == bytes.fromhex("00 00 00")
    assert REPLY_NOT_DATAGRAM == bytes.fromhex("00 00 01")
    assert REPLY_NOT_STREAM == bytes.fromhex("00 00 FF")


# ---------------------------------------------------------------- listener parses


@pytest.mark.parametrize(
    "wire, name, mode",
    [
        (TCP_16161, "16161", MODE_STREAM),
        (TCP_SQL1, "sql1", MODE_STREAM),
        (UDP_5000U, "5000U", MODE_DATAGRAM),
        (UNKNOWN_X, "x", MODE_STREAM),
    ],
)
def test_parser_reads_reference_vectors_split_anywhere(wire: bytes, name: str, mode: int) -> None:
    for chunks in splits(wire):
        parser = PreambleParser()
        preamble = feed_all(parser, chunks)
        assert preamble == Preamble(port_name=name, mode=mode)
        assert parser.done and parser.remainder == b""


def test_parser_keeps_payload_after_the_preamble() -> None:
    for chunks in splits(TCP_SQL1):
        chunks[-1] += b"SELECT 1"  # payload pipelined in the message that completes the preamble
        parser = PreambleParser()
        assert feed_all(parser, chunks) == Preamble("sql1")
        assert parser.remainder == b"SELECT 1"
    with pytest.raises(PreambleError):
        parser.feed(b"more")


def test_parser_rejects_other_versions_as_soon_as_the_header_is_in() -> None:
    # version 2.0 -> 00 00 00, before any name byte arrives (azbridge answers on the header alone)
    for header in (b"\x02\x00\x00", b"\x01\x01\x00", b"\x01\x00\x02", b"\x00\x00\x00"):
        parser = PreambleParser()
        for byte in header:
            assert parser.feed(bytes([byte])) is None
        with pytest.raises(UnsupportedPreamble) as info:
            parser.feed(b"\x05")
        assert info.value.reply == REPLY_UNSUPPORTED
        assert isinstance(info.value, ProtocolError)


def test_parser_handles_empty_chunks_and_empty_name() -> None:
    parser = PreambleParser()
    assert parser.feed(b"") is None
    assert parser.feed(b"\x01\x00\x00\x00") == Preamble("")


def test_parser_replaces_invalid_utf8_so_the_name_matches_nothing() -> None:
    preamble = PreambleParser().feed(b"\x01\x00\x00\x02\xff\xfe")
    assert preamble is not None
    assert match_port_name(preamble.port_name, ["a", "b"]) is None


# ---------------------------------------------------------------- dispatch and reply


def test_reply_for_each_outcome() -> None:
    assert reply_for(Preamble("16161", MODE_STREAM), MODE_STREAM) == bytes.fromhex("01 00 00")
    assert reply_for(Preamble("5000U", MODE_DATAGRAM), MODE_DATAGRAM) == bytes.fromhex("01 00 01")
    # UDP name to a TCP forwarder
    assert reply_for(Preamble("5000U", MODE_DATAGRAM), MODE_STREAM) == bytes.fromhex("00 00 FF")
    # TCP name to a UDP forwarder
    assert reply_for(Preamble("5000", MODE_STREAM), MODE_DATAGRAM) == bytes.fromhex("00 00 01")


def test_match_port_name_single_forwarder_numeric_fallback() -> None:
    assert match_port_name("16161", ["22"]) == "22"
    assert match_port_name(" +2222 ", ["ssh"]) == "ssh"  # .NET int.TryParse allows white space and a sign
    assert match_port_name("-1", ["ssh"]) == "ssh"
    assert match_port_name("99999999999", ["ssh"]) is None  # does not fit an Int32
    assert match_port_name("5000U", ["22"]) is None
    assert match_port_name("x", ["22"]) is None


def test_match_port_name_exact_and_case_sensitive_with_several() -> None:
    names = ["sql1", "sql2", "22"]
    assert match_port_name("sql2", names) == "sql2"
    assert match_port_name("SQL2", names) is None
    assert match_port_name("22", names) == "22"
    assert match_port_name("16161", names) is None  # no numeric fallback with several forwarders
    assert match_port_name("x", names) is None


def test_validate_port_name() -> None:
    assert validate_port_name("sql1/a_b-c.d") == "sql1/a_b-c.d"
    for bad in ("", "a b", "a:b", "ä"):
        with pytest.raises(ConfigurationError):
            validate_port_name(bad)


# ---------------------------------------------------------------- sender reads the reply


@pytest.mark.parametrize(
    "reply, mode, accepted",
    [
        (b"\x01\x00\x00", MODE_STREAM, True),
        (b"\x01\x00\x01", MODE_DATAGRAM, True),
        (b"\x01\x00\x01", MODE_STREAM, False),  # C# TCP senders accept only 01 00 00
        (b"\x00\x00\x00", MODE_STREAM, False),
        (b"\x00\x00\x01", MODE_STREAM, False),
        (b"\x00\x00\xff", MODE_DATAGRAM, False),
    ],
)
def test_reply_parser_split_anywhere_then_check(reply: bytes, mode: int, accepted: bool) -> None:
    for chunks in splits(reply):
        parser = ReplyParser()
        result = None
        for chunk in chunks:
            assert result is None
            result = parser.feed(chunk)
        assert result == reply and parser.remainder == b""
        if accepted:
            check_reply(result, mode)
        else:
            with pytest.raises(PreambleRejected) as info:
                check_reply(result, mode)
            assert info.value.reply == reply


def test_reply_parser_keeps_payload_and_explains_failures() -> None:
    parser = ReplyParser()
    assert parser.feed(b"\x01\x00") is None
    assert parser.feed(b"\x00hello") == b"\x01\x00\x00"
    assert parser.remainder == b"hello"
    assert "does not understand" in str(PreambleRejected(REPLY_UNSUPPORTED))
    assert "datagram" in str(PreambleRejected(REPLY_NOT_STREAM))
    assert "stream was requested" in str(PreambleRejected(REPLY_NOT_DATAGRAM))
    assert PreambleRejected(b"", "closed without a reply").reply == b""
