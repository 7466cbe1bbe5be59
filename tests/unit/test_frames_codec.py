"""hybridconn._frames and _messages: packing, incremental parsing, RFC 6455 checks, close payloads, reassembly."""

from __future__ import annotations

import os
import struct
from typing import List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn._frames import (
    MAX_CLOSE_REASON, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Frame, FrameError, FrameParser, Role,
    close_payload, close_reason_bytes, is_valid_close_code, pack_frame, parse_close,
)
from hybridconn._messages import MessageAssembler

BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537]
CONTROL_OPCODES = [OP_CLOSE, OP_PING, OP_PONG]


def parse_all(parser: FrameParser, wire: bytes, pieces: Sequence[int] = ()) -> List[Frame]:
    """Feed ``wire`` cut at the offsets in ``pieces``, collecting frames as they complete."""
    frames: List[Frame] = []
    start = 0
    for cut in [*pieces, len(wire)]:
        frames += parser.receive(wire[start:cut])
        start = cut
    return frames


def receiver(masked: bool, **options: Optional[int]) -> FrameParser:
    """The parser at the other end: masked frames go to a server, unmasked ones to a client."""
    return FrameParser(Role.SERVER if masked else Role.CLIENT, **options)  # type: ignore[arg-type]


def raw_frame(first: int, payload: bytes = b"", masked: bool = True, length: Optional[bytes] = None) -> bytes:
    """A frame built by hand, so that broken ones can be written (``length``: the raw length bytes)."""
    bit = 0x80 if masked else 0
    if length is None:
        length = bytes([len(payload)]) if len(payload) < 126 else b"\x7e" + struct.pack("!H", len(payload))
    head = bytes([first, bit | length[0]]) + length[1:]
    if not masked:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# ---------------------------------------------------------------------- round trips


# A message: opcode and fragments; control frames may come between fragments.
message_sequences = st.lists(
    st.tuples(
        st.sampled_from([OP_TEXT, OP_BINARY]),
        st.lists(st.binary(max_size=300), min_size=1, max_size=4),
        st.lists(st.tuples(st.sampled_from(CONTROL_OPCODES), st.binary(max_size=125)), max_size=2),
    ),
    min_size=1,
    max_size=4,
)


def pack_sequence(
    messages: List[Tuple[int, List[bytes], List[Tuple[int, bytes]]]], masked: bool
) -> Tuple[bytes, List[Frame]]:
    wire, expected = [], []
    for opcode, fragments, controls in messages:
        for index, fragment in enumerate(fragments):
            frame = Frame(opcode if index == 0 else OP_CONT, fragment, index == len(fragments) - 1)
            wire.append(pack_frame(frame.opcode, frame.payload, fin=frame.fin, masked=masked))
            expected.append(frame)
            if index == 0 and controls and len(fragments) > 1:  # interleaved inside the message
                for control_opcode, payload in controls:
                    wire.append(pack_frame(control_opcode, payload, masked=masked))
                    expected.append(Frame(control_opcode, payload, True))
    return b"".join(wire), expected


# Control frames carry at most 125 bytes (longer ones: test_pack_refuses_control_frames_over_125_bytes...).
_OPCODE_SIZES = [(opcode, size) for opcode in [OP_TEXT, OP_BINARY, OP_CONT] for size in BOUNDARY_SIZES]
_OPCODE_SIZES += [(opcode, size) for opcode in CONTROL_OPCODES for size in BOUNDARY_SIZES if size <= 125]


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("opcode, size", _OPCODE_SIZES)
def test_every_opcode_and_length_form_round_trips(opcode: int, size: int, masked: bool) -> None:
    payload = os.urandom(size)
    if opcode == OP_CONT:  # a continuation needs a message in progress
        parser = receiver(masked)
        parse_all(parser, pack_frame(OP_BINARY, b"start", fin=False, masked=masked))
        assert parse_all(parser, pack_frame(OP_CONT, payload, masked=masked)) == [Frame(OP_CONT, payload, True)]
        return
    wire = pack_frame(opcode, payload, masked=masked)
    header = 2 + (0 if size < 126 else 2 if size < 65536 else 8) + (4 if masked else 0)
    assert len(wire) == header + size
    assert parse_all(receiver(masked), wire) == [Frame(opcode, payload, True)]


@settings(max_examples=150)
@given(messages=message_sequences, masked=st.booleans())
def test_sequences_of_frames_round_trip(
    messages: List[Tuple[int, List[bytes], List[Tuple[int, bytes]]]], masked: bool
) -> None:
    wire, expected = pack_sequence(messages, masked)
    assert parse_all(receiver(masked), wire) == expected


def test_parsing_split_at_every_byte_boundary() -> None:
    messages = [(OP_TEXT, ["grüße".encode(), b"", b"x" * 130], [(OP_PING, b"p")]),
                (OP_BINARY, [os.urandom(300)], []), (OP_BINARY, [b"a", b"b"], [(OP_PONG, b"")])]
    for masked in (True, False):
        wire, expected = pack_sequence(messages, masked)
        for cut in range(len(wire) + 1):
            assert parse_all(receiver(masked), wire, [cut]) == expected, cut


def test_a_long_frame_fed_one_byte_at_a_time() -> None:
    payload = os.urandom(70_000)
    wire = pack_frame(OP_BINARY, payload, masked=True)
    parser = FrameParser(Role.SERVER)
    for index in range(len(wire) - 1):
        parser.feed(wire[index:index + 1])
        assert parser.next_frame() is None
    assert parser.buffered == len(wire) - 1 and parser.wanted == 1
    parser.feed(wire[-1:])
    assert parser.next_frame() == Frame(OP_BINARY, payload, True)
    assert parser.buffered == 0


@settings(max_examples=100)
@given(messages=message_sequences, masked=st.booleans(), data=st.data())
def test_parsing_in_random_pieces(messages: List[Tuple[int, List[bytes], List[Tuple[int, bytes]]]], masked: bool,
                                  data: st.DataObject) -> None:
    wire, expected = pack_sequence(messages, masked)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    assert parse_all(receiver(masked), wire, cuts) == expected


def test_payloads_are_bytes_whatever_buffer_type_was_fed() -> None:
    wire = pack_frame(OP_BINARY, b"abc") + pack_frame(OP_BINARY, b"x" * 2000, masked=False)
    for form in (bytearray(wire), memoryview(wire)):
        frames = FrameParser(Role.CLIENT).receive(form)  # type: ignore[arg-type]
        assert [f.payload for f in frames] == [b"abc", b"x" * 2000]
        assert all(type(f.payload) is bytes for f in frames)


def test_wanted_tells_how_much_of_a_frame_is_missing() -> None:
    parser = FrameParser(Role.CLIENT)
    wire = pack_frame(OP_BINARY, b"x" * 1000)
    parser.feed(wire[:1])
    assert parser.wanted == 1  # the rest of the first two bytes
    parser.feed(wire[1:10])
    assert parser.next_frame() is None
    assert parser.wanted == len(wire) - 10


def test_fresh_masks_and_masked_bytes_differ_from_the_payload() -> None:
    payload = b"a" * 2000
    first, second = pack_frame(OP_BINARY, payload, masked=True), pack_frame(OP_BINARY, payload, masked=True)
    assert first[4:8] != second[4:8]  # the keys (a 1-in-4-billion clash would fail this)
    assert payload not in first


# ---------------------------------------------------------------------- rejections


def _rejected(parser: FrameParser, wire: bytes) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse_all(parser, wire)
    return caught.value


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_reserved_bits_are_a_protocol_error(rsv: int) -> None:
    assert _rejected(FrameParser(Role.SERVER), raw_frame(0x80 | rsv | OP_BINARY, b"x")).code == 1002


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_are_a_protocol_error(opcode: int) -> None:
    assert _rejected(FrameParser(Role.SERVER), raw_frame(0x80 | opcode, b"x")).code == 1002


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
def test_control_frames_over_125_bytes_or_fragmented_are_a_protocol_error(opcode: int) -> None:
    payload = b"\x03\xe8" + b"x" * 124  # 126 bytes; a valid close code first
    assert _rejected(FrameParser(Role.SERVER), raw_frame(0x80 | opcode, payload)).code == 1002
    assert _rejected(FrameParser(Role.SERVER), raw_frame(opcode, b"\x03\xe8")).code == 1002


def test_broken_frames_are_rejected_from_their_first_two_bytes() -> None:
    parser = FrameParser(Role.SERVER)
    parser.feed(bytes([0x80 | 0x40 | OP_BINARY, 0x80 | 127]))  # RSV1 and a 64-bit length still to come
    with pytest.raises(FrameError):
        parser.next_frame()


@pytest.mark.parametrize(
    "role, masked", [(Role.SERVER, False), (Role.CLIENT, True)], ids=["unmasked-to-server", "masked-to-client"]
)
def test_masking_must_match_the_role(role: Role, masked: bool) -> None:
    assert _rejected(FrameParser(role), raw_frame(0x80 | OP_BINARY, b"data", masked=masked)).code == 1002


def test_a_lenient_client_accepts_and_unmasks_masked_frames() -> None:
    parser = FrameParser(Role.CLIENT, accept_masked=True)
    wire = raw_frame(0x80 | OP_BINARY, b"data", masked=True) + raw_frame(0x80 | OP_TEXT, b"plain", masked=False)
    assert parse_all(parser, wire) == [Frame(OP_BINARY, b"data", True), Frame(OP_TEXT, b"plain", True)]


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(b"\x7f" + struct.pack("!Q", 1 << 63), id="64-bit-top-bit-set"),
        pytest.param(b"\x7f" + struct.pack("!Q", (1 << 64) - 1), id="64-bit-all-ones"),
        pytest.param(b"\x7f" + struct.pack("!Q", 100), id="64-bit-for-a-short-length"),
        pytest.param(b"\x7e" + struct.pack("!H", 100), id="16-bit-for-a-7-bit-length"),
    ],
)
def test_impossible_or_overlong_lengths_are_a_protocol_error(length: bytes) -> None:
    assert _rejected(FrameParser(Role.SERVER), raw_frame(0x80 | OP_BINARY, b"", length=length)).code == 1002


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(raw_frame(0x80 | OP_CONT, b"orphan"), id="continuation-without-a-message"),
        pytest.param(raw_frame(OP_TEXT, b"first") + raw_frame(0x80 | OP_BINARY, b"second"), id="new-message-inside"),
        pytest.param(
            raw_frame(0x80 | OP_TEXT, b"whole") + raw_frame(0x80 | OP_CONT, b"more"), id="continuation-after-fin"
        ),
    ],
)
def test_broken_fragmentation_is_a_protocol_error(wire: bytes) -> None:
    assert _rejected(FrameParser(Role.SERVER), wire).code == 1002


def test_control_frames_may_come_between_fragments() -> None:
    wire = raw_frame(OP_BINARY, b"a") + raw_frame(0x80 | OP_PING, b"p") + raw_frame(0x80 | OP_CONT, b"b")
    assert [f.opcode for f in parse_all(FrameParser(Role.SERVER), wire)] == [OP_BINARY, OP_PING, OP_CONT]


# ---------------------------------------------------------------------- the size limit


def test_no_size_limit_by_default() -> None:
    assert FrameParser(Role.SERVER).max_message_size is None
    payload = os.urandom(3 << 20)
    assert parse_all(FrameParser(Role.CLIENT), pack_frame(OP_BINARY, payload)) == [Frame(OP_BINARY, payload, True)]


def test_a_message_at_the_limit_passes_and_one_byte_more_is_too_big() -> None:
    limit = 1000
    assert parse_all(FrameParser(Role.CLIENT, max_message_size=limit), pack_frame(OP_TEXT, b"x" * limit))
    error = _rejected(FrameParser(Role.CLIENT, max_message_size=limit), pack_frame(OP_TEXT, b"x" * (limit + 1)))
    assert error.code == 1009


def test_the_limit_counts_every_fragment_of_a_message_and_resets_after_it() -> None:
    parser = FrameParser(Role.SERVER, max_message_size=10)
    first = pack_frame(OP_BINARY, b"12345", fin=False, masked=True) + pack_frame(OP_CONT, b"12345", masked=True)
    ping = pack_frame(OP_PING, b"p" * 100, masked=True)  # control frames do not count
    assert len(parse_all(parser, first + ping + pack_frame(OP_BINARY, b"0123456789", masked=True))) == 4
    wire = pack_frame(OP_BINARY, b"123456", fin=False, masked=True) + pack_frame(OP_CONT, b"12345", masked=True)
    assert _rejected(parser, wire).code == 1009


def test_a_too_big_message_is_refused_from_its_header_before_its_payload_arrives() -> None:
    parser = FrameParser(Role.CLIENT, max_message_size=1 << 20)
    parser.feed(pack_frame(OP_BINARY, b"x" * (2 << 20))[:10])
    with pytest.raises(FrameError) as caught:
        parser.next_frame()
    assert caught.value.code == 1009


# ---------------------------------------------------------------------- pieces of long frames


@settings(max_examples=150)
@given(masked=st.booleans(), piece=st.integers(1, 40), size=st.integers(41, 300), fin=st.booleans(),
       opcode=st.sampled_from([OP_TEXT, OP_BINARY]), data=st.data())
def test_a_long_frame_arriving_slowly_comes_out_in_pieces_of_its_message(
    masked: bool, piece: int, size: int, fin: bool, opcode: int, data: st.DataObject
) -> None:
    payload = data.draw(st.binary(min_size=size, max_size=size))
    wire = pack_frame(opcode, payload, fin=fin, masked=masked)
    after = pack_frame(OP_CONT if not fin else OP_BINARY, b"next", masked=masked)
    cuts = sorted(data.draw(st.lists(st.integers(1, len(wire) - 1), min_size=1, max_size=10)))
    frames = parse_all(FrameParser(Role.SERVER if masked else Role.CLIENT, max_piece=piece), wire + after, cuts)
    pieces, last = frames[:-1], frames[-1]
    assert b"".join(p.payload for p in pieces) == payload
    assert [p.opcode for p in pieces] == [opcode] + [OP_CONT] * (len(pieces) - 1)
    assert [p.fin for p in pieces] == [False] * (len(pieces) - 1) + [fin]
    # Whole when it was all there at once; otherwise in pieces, never longer than max_piece.
    assert len(pieces) == 1 or all(0 < len(p.payload) <= piece for p in pieces)
    assert last == Frame(OP_CONT if not fin else OP_BINARY, b"next", True)  # the sequence is followed across pieces


def test_a_long_frame_that_has_arrived_whole_comes_out_whole() -> None:
    wire = pack_frame(OP_BINARY, b"x" * 1000, masked=True)
    assert parse_all(FrameParser(Role.SERVER, max_piece=100), wire) == [Frame(OP_BINARY, b"x" * 1000, True)]
    parser = FrameParser(Role.SERVER, max_piece=100)
    assert parse_all(parser, wire, [500]) == [Frame(OP_BINARY, b"x" * 100, False)] + [
        Frame(OP_CONT, b"x" * 100, False)] * 8 + [Frame(OP_CONT, b"x" * 100, True)]


def test_pieces_keep_the_size_limit_and_the_message_sequence() -> None:
    wire = pack_frame(OP_TEXT, b"x" * 1000, fin=False, masked=True)
    error = _rejected(FrameParser(Role.SERVER, max_piece=100, max_message_size=999), wire[:300])
    assert error.code == 1009
    parser = FrameParser(Role.SERVER, max_piece=100)
    parse_all(parser, wire)
    assert _rejected(parser, pack_frame(OP_BINARY, b"new message inside", masked=True)).code == 1002


def test_text_split_into_pieces_inside_characters_decodes_whole() -> None:
    text = "€" * 400
    parser, assembler = FrameParser(Role.SERVER, max_piece=100), MessageAssembler()
    wire = pack_frame(OP_TEXT, text.encode("utf-8"), masked=True)
    pieces = [assembler.piece(frame) for frame in parse_all(parser, wire, list(range(10, len(wire), 77)))]
    assert len(pieces) > 1 and "".join(p.data for p in pieces) == text  # type: ignore[misc]


def test_max_piece_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FrameParser(Role.SERVER, max_piece=0)


# ---------------------------------------------------------------------- packing errors


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
def test_pack_refuses_control_frames_over_125_bytes_or_fragmented(opcode: int) -> None:
    with pytest.raises(ValueError):
        pack_frame(opcode, b"x" * 126)
    with pytest.raises(ValueError):
        pack_frame(opcode, b"", fin=False)


@pytest.mark.parametrize("opcode", [-1, 0x3, 0x7, 0xB, 0xF, 0x10])
def test_pack_refuses_unknown_opcodes(opcode: int) -> None:
    with pytest.raises(ValueError):
        pack_frame(opcode, b"")


# ---------------------------------------------------------------------- close payloads


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes_round_trip(code: int) -> None:
    assert is_valid_close_code(code)
    assert parse_close(close_payload(code, "bye")) == (code, "bye")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes_are_refused_both_ways(code: int) -> None:
    assert not is_valid_close_code(code)
    with pytest.raises(ValueError):
        close_payload(code)
    with pytest.raises(FrameError) as caught:
        parse_close(struct.pack("!H", code))
    assert caught.value.code == 1002


def test_close_without_a_code() -> None:
    assert close_payload(None) == b""
    assert parse_close(b"") == (None, "")
    with pytest.raises(ValueError):
        close_payload(None, "a reason needs a code")


def test_broken_close_payloads() -> None:
    with pytest.raises(FrameError) as one_byte:
        parse_close(b"\x03")
    assert one_byte.value.code == 1002
    with pytest.raises(FrameError) as not_utf8:
        parse_close(b"\x03\xe8\xff\xfe")
    assert not_utf8.value.code == 1007


@given(st.text())
def test_close_reasons_are_cut_to_123_bytes_on_a_character_boundary(reason: str) -> None:
    cut = close_reason_bytes(reason)
    assert len(cut) <= MAX_CLOSE_REASON
    decoded = cut.decode("utf-8")  # whole characters only
    assert reason.startswith(decoded)
    if len(reason.encode("utf-8")) <= MAX_CLOSE_REASON:
        assert decoded == reason
    else:
        assert len(cut) > MAX_CLOSE_REASON - 4  # cut at most inside the last character
    assert parse_close(close_payload(1000, reason)) == (1000, decoded)
    pack_frame(OP_CLOSE, close_payload(4000, reason))  # always fits a control frame
