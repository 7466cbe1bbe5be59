"""hybridconn._messages (fragments to messages) and _frames.fragment_frames (a streamed message to frames)."""

from __future__ import annotations

from typing import Iterator, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybridconn._frames import OP_BINARY, OP_CONT, OP_TEXT, Frame, FrameError, FrameParser, Role, fragment_frames
from hybridconn._messages import MessageAssembler


# ---------------------------------------------------------------------- streamed messages


def _unpacked(wires: List[bytes]) -> List[Frame]:
    return FrameParser(Role.SERVER).receive(b"".join(wires))


def test_fragment_frames_cuts_chunks_to_the_fragment_size_and_ends_with_fin() -> None:
    frames = _unpacked(list(fragment_frames([b"a" * 70_000, b"", b"b"], 65536, masked=True)))
    assert frames == [
        Frame(OP_BINARY, b"a" * 65536, False),
        Frame(OP_CONT, b"a" * 4464, False),
        Frame(OP_CONT, b"b", True),
    ]
    assert _unpacked(list(fragment_frames([], 10, masked=True))) == [Frame(OP_BINARY, b"", True)]
    assert FrameParser(Role.CLIENT).receive(b"".join(fragment_frames([b"x"], 10))) == [Frame(OP_BINARY, b"x", True)]


def test_fragment_frames_copies_each_chunk_so_a_reused_buffer_is_safe() -> None:
    buffer = bytearray(b"first")

    def chunks() -> Iterator[bytearray]:
        yield buffer
        buffer[:] = b"again"  # a reader reusing its buffer, as readinto() loops do
        yield buffer

    assert [f.payload for f in _unpacked(list(fragment_frames(chunks(), 10, masked=True)))] == [b"first", b"again"]


def test_fragment_frames_refuses_a_chunk_that_is_not_bytes() -> None:
    frames = fragment_frames([b"ok", b"ok", "text"], 10, masked=True)  # type: ignore[list-item]
    assert next(frames)  # the first fragment goes out once the second chunk has come
    with pytest.raises(TypeError):
        next(frames)


# ---------------------------------------------------------------------- messages


def test_add_joins_fragments_and_decodes_text_once() -> None:
    assembler = MessageAssembler()
    encoded = "grüße €".encode()
    cut = encoded.index("€".encode()) + 1
    assert assembler.add(Frame(OP_TEXT, encoded[:cut], False)) is None
    assert assembler.add(Frame(OP_CONT, encoded[cut:], True)) == "grüße €"
    assert assembler.add(Frame(OP_BINARY, b"a", False)) is None
    assert assembler.add(Frame(OP_CONT, b"b", False)) is None
    message = assembler.add(Frame(OP_CONT, b"c", True))
    assert message == b"abc" and isinstance(message, bytes)


def test_piece_hands_out_each_frame_with_split_characters_made_whole() -> None:
    assembler = MessageAssembler()
    encoded = "a€b€".encode()
    frames = [
        Frame(OP_TEXT, encoded[:2], False),
        Frame(OP_CONT, encoded[2:5], False),
        Frame(OP_CONT, encoded[5:], True),
    ]
    pieces = [assembler.piece(frame) for frame in frames]
    assert [p.data for p in pieces] == ["a", "€b", "€"]
    assert [p.finished for p in pieces] == [False, False, True] and all(p.text for p in pieces)
    assert assembler.piece(Frame(OP_BINARY, b"\xff", True)) == (False, b"\xff", True)


@pytest.mark.parametrize("mode", ["add", "piece"])
@pytest.mark.parametrize(
    "frames",
    [
        pytest.param([Frame(OP_TEXT, b"\xff", True)], id="invalid-byte"),
        pytest.param([Frame(OP_TEXT, "€".encode()[:2], False), Frame(OP_CONT, b"", True)], id="cut-off-at-the-end"),
        pytest.param([Frame(OP_TEXT, b"ok", False), Frame(OP_CONT, b"\xc0\xaf", True)], id="overlong-in-a-fragment"),
        pytest.param([Frame(OP_TEXT, b"\xed\xa0\x80", True)], id="surrogate"),
    ],
)
def test_invalid_utf8_in_text_is_1007(mode: str, frames: List[Frame]) -> None:
    assembler = MessageAssembler()
    with pytest.raises(FrameError) as caught:
        for frame in frames:
            getattr(assembler, mode)(frame)
    assert caught.value.code == 1007


@given(st.text(max_size=200), st.lists(st.integers(0, 800), max_size=6))
def test_pieces_of_any_split_text_join_to_the_message(text: str, cuts: List[int]) -> None:
    encoded = text.encode("utf-8")
    bounds = sorted({min(c, len(encoded)) for c in cuts} | {0, len(encoded)})
    parts = [encoded[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]
    frames = [Frame(OP_TEXT if i == 0 else OP_CONT, part, i == len(parts) - 1) for i, part in enumerate(parts)]
    pieces = MessageAssembler()
    assert "".join(pieces.piece(frame).data for frame in frames) == text  # type: ignore[misc]
    joined = MessageAssembler()
    assert [joined.add(frame) for frame in frames][-1] == text
