"""Frame pairing (collected and streamed), the hints violations carry, and the address-only request."""

from __future__ import annotations

import json
from typing import Any, List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn.exceptions import ProtocolError
from hybridconn.protocol import (
    CONTROL_CHANNEL_BODY_LIMIT,
    BodyChunk,
    BodyEnd,
    FrameAssembler,
    MessageHead,
    MessageReceived,
    ProtocolViolation,
    RenewToken,
    Request,
    Response,
    StreamingFrameAssembler,
    ViolationCause,
    address_only_request,
    parse_message,
    serialize_message,
)

FUZZ = settings(max_examples=200, deadline=None)


def _response(rid: str = "r1", body: bool = True, status: Any = 200) -> str:
    return json.dumps({"response": {"requestId": rid, "statusCode": status, "body": body}})


# --------------------------------------------------------------------------------------
# The address-only request


def test_address_only_request_holds_only_address_and_id() -> None:
    text = address_only_request("wss://ns/$hc/hc1?sb-hc-action=request&sb-hc-id=7", "7")
    assert json.loads(text) == {"request": {"address": "wss://ns/$hc/hc1?sb-hc-action=request&sb-hc-id=7", "id": "7"}}
    assert " " not in text  # compact, as every message we write
    message = parse_message(text)
    assert isinstance(message, Request) and message.is_address_only and not message.has_body
    assert message == Request(address="wss://ns/$hc/hc1?sb-hc-action=request&sb-hc-id=7", id="7")


# --------------------------------------------------------------------------------------
# StreamingFrameAssembler


def test_streamed_body_comes_as_head_chunks_and_end() -> None:
    assembler = StreamingFrameAssembler()
    (head,) = assembler.receive_text(_response())
    assert isinstance(head, MessageHead) and isinstance(head.message, Response)
    assert assembler.awaiting_body
    assert assembler.receive_binary(b"one ", fin=False) == [BodyChunk(b"one ")]
    assert assembler.receive_binary(b"", fin=False) == []  # an empty fragment carries nothing
    assert assembler.receive_binary(bytearray(b"two"), fin=True) == [BodyChunk(b"two"), BodyEnd(head.message)]
    assert not assembler.awaiting_body


def test_streamed_empty_body_is_head_and_end() -> None:
    assembler = StreamingFrameAssembler()
    (head,) = assembler.receive_text(_response())
    assert assembler.receive_binary(b"", fin=True) == [BodyEnd(head.message)]


def test_streaming_message_without_body_is_one_event() -> None:
    assembler = StreamingFrameAssembler()
    (event,) = assembler.receive_text(_response(body=False))
    assert isinstance(event, MessageReceived) and event.body is None


def test_streamed_body_ends_with_the_close() -> None:
    assembler = StreamingFrameAssembler()
    assert assembler.finish() == []
    (head,) = assembler.receive_text(_response())
    assembler.receive_binary(b"abc", fin=False)
    assert assembler.finish() == [BodyEnd(head.message)]
    assert not assembler.awaiting_body and assembler.finish() == []


def test_streamed_body_over_the_limit_is_reported_once_as_it_grows() -> None:
    assembler = StreamingFrameAssembler(max_body=4)
    (head,) = assembler.receive_text(_response("big"))
    assert assembler.receive_binary(b"abcd", fin=False) == [BodyChunk(b"abcd")]  # the limit is inclusive
    (violation,) = assembler.receive_binary(b"e", fin=False)
    assert isinstance(violation, ProtocolViolation) and violation.cause is ViolationCause.BODY_TOO_LARGE
    assert violation.message == head.message and violation.request_id == "big"
    assert assembler.receive_binary(b"more", fin=False) == []  # dropped, not reported again
    assert assembler.receive_binary(b"last", fin=True) == []  # and no BodyEnd
    assert assembler.finish() == []
    (event,) = assembler.receive_text(_response("next", body=False))
    assert isinstance(event, MessageReceived)


def test_text_after_an_oversized_streamed_body_is_not_a_second_violation() -> None:
    assembler = StreamingFrameAssembler(max_body=1)
    assembler.receive_text(_response("big"))
    (violation,) = assembler.receive_binary(b"ab", fin=False)
    assert isinstance(violation, ProtocolViolation) and violation.cause is ViolationCause.BODY_TOO_LARGE
    (event,) = assembler.receive_text(_response("next", body=False))  # the abandoned body is not reported again
    assert isinstance(event, MessageReceived)


def test_streaming_text_inside_a_body_abandons_it() -> None:
    assembler = StreamingFrameAssembler()
    (head,) = assembler.receive_text(_response("first"))
    assembler.receive_binary(b"part", fin=False)
    violation, second = assembler.receive_text(_response("second"))
    assert isinstance(violation, ProtocolViolation) and violation.cause is ViolationCause.BODY_INTERRUPTED
    assert violation.message == head.message and violation.request_id == "first"
    assert isinstance(second, MessageHead) and second.message.request_id == "second"  # type: ignore[union-attr]


def test_streaming_stray_binary_rules_match_collecting() -> None:
    assembler = StreamingFrameAssembler()
    assert assembler.receive_binary(b"") == []  # hyco-https's empty message after a bodiless response
    (violation,) = assembler.receive_binary(b"junk", fin=False)
    assert isinstance(violation, ProtocolViolation) and violation.cause is ViolationCause.STRAY_BODY
    assert violation.message is None and violation.request_id is None
    assert assembler.receive_binary(b"rest", fin=True) == []


# --------------------------------------------------------------------------------------
# Violations carry what they are about


def test_unparsable_response_names_its_request() -> None:
    for text in (_response("r7", status=600), _response("r7", status="abc"), _response("r7", body="yes")):
        (violation,) = FrameAssembler().receive_text(text)
        assert isinstance(violation, ProtocolViolation) and violation.message is None
        assert violation.kind == "response" and violation.request_id == "r7"
        assert violation.cause is ViolationCause.INVALID_MESSAGE


def test_unparsable_request_names_its_id() -> None:
    (violation,) = FrameAssembler().receive_text('{"request":{"id":"q1","method":7}}')
    assert isinstance(violation, ProtocolViolation)
    assert violation.kind == "request" and violation.request_id == "q1"


def test_no_hint_where_none_can_be_told() -> None:
    for text in ("{nope", "[1]", '{"response":{"requestId":5,"statusCode":"x"}}', '{"response":1,"request":2}'):
        (violation,) = FrameAssembler().receive_text(text)
        assert isinstance(violation, ProtocolViolation) and violation.request_id is None
    (violation,) = FrameAssembler().receive_text('{"response":[]}')
    assert isinstance(violation, ProtocolViolation) and violation.kind == "response" and violation.request_id is None


def test_a_violation_about_a_parsed_message_fills_its_hints() -> None:
    response = Response(request_id="r", status_code=200)
    violation = ProtocolViolation(ProtocolError("bad"), response)
    assert violation.kind == "response" and violation.request_id == "r"
    assert violation.cause is ViolationCause.INVALID_MESSAGE  # the default
    request = Request(address="a", id="q", method="GET")
    assert ProtocolViolation(ProtocolError("bad"), request).request_id == "q"
    assert ProtocolViolation(ProtocolError("bad")).request_id is None


def test_oversized_collected_body_is_a_body_too_large_violation() -> None:
    assembler = FrameAssembler(max_body=2)
    assembler.receive_text(_response("big"))
    (violation,) = assembler.receive_binary(b"abc", fin=True)
    assert isinstance(violation, ProtocolViolation) and violation.cause is ViolationCause.BODY_TOO_LARGE
    assert violation.request_id == "big" and "3 bytes" in str(violation.error)


# --------------------------------------------------------------------------------------
# Streaming and collecting agree


def _feed(assembler: Any, frames: List[Any]) -> List[Any]:
    events: List[Any] = []
    for kind, data, fin in frames:
        if kind == "binary":
            events += assembler.receive_binary(data, fin=fin)
        elif kind == "json":
            text = serialize_message(Request(address="x", id=data.hex(), method="POST", has_body=bool(data)))
            events += assembler.receive_text(text, fin=fin)
        else:
            events += assembler.receive_text(data.decode("latin-1"), fin=fin)
    return events + assembler.finish()


def _collected(events: List[Any]) -> List[Any]:
    """Streaming events folded back into what a collecting assembler gives."""
    out: List[Any] = []
    body: Optional[List[bytes]] = None
    for event in events:
        if isinstance(event, MessageHead):
            body = []
        elif isinstance(event, BodyChunk):
            assert body is not None, "a chunk outside a body"
            body.append(event.data)
        elif isinstance(event, BodyEnd):
            assert body is not None, "an end outside a body"
            out.append(MessageReceived(event.message, b"".join(body)))
            body = None
        else:
            if isinstance(event, ProtocolViolation) and event.cause is not ViolationCause.STRAY_BODY:
                body = None
            out.append(event)
    return out


def _delivered(events: List[Any]) -> List[Any]:
    # Violations may differ in timing: a body over the limit is reported as soon as it grows past
    # it when streaming, at its last frame when collecting (never, if a text frame cuts it first).
    return [(e.message, e.body) for e in events if isinstance(e, MessageReceived)]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["text", "json", "binary"]), st.binary(max_size=40), st.booleans()),
        max_size=25,
    )
)
def test_fuzz_streaming_agrees_with_collecting(frames: List[Any]) -> None:
    collecting = _feed(FrameAssembler(max_body=64), frames)
    streaming = _feed(StreamingFrameAssembler(max_body=64), frames)
    assert _delivered(_collected(streaming)) == _delivered(collecting)
    assert all(isinstance(e, (MessageReceived, MessageHead, BodyChunk, BodyEnd, ProtocolViolation)) for e in streaming)


# --------------------------------------------------------------------------------------
# FrameAssembler


def _request(rid: str = "1", body: bool = True) -> str:
    return serialize_message(Request(address="wss://x", id=rid, method="POST", request_target="/h", has_body=body))


def test_message_without_body_is_delivered_at_once() -> None:
    assembler = FrameAssembler()
    events = assembler.receive_text(_request(body=False))
    assert events == [MessageReceived(parse_message(_request(body=False)))]
    assert events[0].body is None
    assert not assembler.awaiting_body


def test_body_in_several_frames_ends_at_fin() -> None:
    assembler = FrameAssembler()
    assert assembler.receive_text(_request()) == []
    assert assembler.awaiting_body
    assert assembler.receive_binary(b"one ", fin=False) == []
    assert assembler.receive_binary(b"two ", fin=False) == []
    events = assembler.receive_binary(b"three", fin=True)
    assert len(events) == 1 and isinstance(events[0], MessageReceived)
    assert events[0].message.id == "1"
    assert events[0].body == b"one two three"
    assert not assembler.awaiting_body


def test_empty_final_frame_and_empty_body() -> None:
    assembler = FrameAssembler()
    assembler.receive_text(_request())
    events = assembler.receive_binary(b"", fin=True)
    assert events == [MessageReceived(parse_message(_request()), b"")]


def test_fragmented_text_frame() -> None:
    assembler = FrameAssembler()
    text = _request(body=False)
    assert assembler.receive_text(text[:10], fin=False) == []
    assert assembler.receive_text(text[10:20], fin=False) == []
    events = assembler.receive_text(text[20:], fin=True)
    assert [type(e) for e in events] == [MessageReceived]


def test_text_where_body_expected_is_a_violation_then_new_message_processed() -> None:
    assembler = FrameAssembler()
    assembler.receive_text(_request("first"))
    assembler.receive_binary(b"partial", fin=False)
    events = assembler.receive_text(_request("second", body=False))
    assert len(events) == 2
    violation, received = events
    assert isinstance(violation, ProtocolViolation)
    assert isinstance(violation.error, ProtocolError)
    assert violation.message is not None and violation.message.id == "first"
    assert isinstance(received, MessageReceived) and received.message.id == "second"
    assert not assembler.awaiting_body


def test_text_where_body_expected_then_new_message_with_body() -> None:
    assembler = FrameAssembler()
    assembler.receive_text(_request("first"))
    events = assembler.receive_text(_request("second"))
    assert [type(e) for e in events] == [ProtocolViolation]
    assert assembler.awaiting_body
    (received,) = assembler.receive_binary(b"ok")
    assert received == MessageReceived(parse_message(_request("second")), b"ok")


def test_malformed_text_is_a_violation_not_a_crash() -> None:
    assembler = FrameAssembler()
    (event,) = assembler.receive_text("{nope")
    assert isinstance(event, ProtocolViolation) and event.message is None
    (event,) = assembler.receive_text('{"request":{"id":"1"}}')
    assert isinstance(event, MessageReceived)


def test_max_body_inclusive_and_overflow() -> None:
    limit = CONTROL_CHANNEL_BODY_LIMIT
    assembler = FrameAssembler(max_body=limit)
    assembler.receive_text(_request("exact"))
    assembler.receive_binary(b"a" * (limit - 1), fin=False)
    (event,) = assembler.receive_binary(b"b", fin=True)
    assert isinstance(event, MessageReceived) and len(event.body or b"") == limit

    assembler.receive_text(_request("over"))
    assert assembler.receive_binary(b"a" * limit, fin=False) == []
    assert assembler.receive_binary(b"b", fin=False) == []
    (event,) = assembler.receive_binary(b"c", fin=True)
    assert isinstance(event, ProtocolViolation)
    assert event.message is not None and event.message.id == "over"
    assert str(limit) in str(event.error)
    # and the assembler is ready for the next message
    (event,) = assembler.receive_text(_request("next", body=False))
    assert isinstance(event, MessageReceived) and event.message.id == "next"


def test_stray_empty_binary_is_ignored() -> None:
    assembler = FrameAssembler()
    assert assembler.receive_binary(b"") == []
    # a fragmented stray empty message: its continuation is dropped too
    assert assembler.receive_binary(b"", fin=False) == []
    assert assembler.receive_binary(b"", fin=True) == []
    (event,) = assembler.receive_text(_request(body=False))
    assert isinstance(event, MessageReceived)


def test_stray_non_empty_binary_is_a_violation() -> None:
    assembler = FrameAssembler()
    (event,) = assembler.receive_binary(b"junk", fin=False)
    assert isinstance(event, ProtocolViolation)
    assert assembler.receive_binary(b"more junk", fin=True) == []  # its continuation, silently
    (event,) = assembler.receive_text(_request(body=False))
    assert isinstance(event, MessageReceived)


def test_stray_empty_binary_reported_when_not_ignored() -> None:
    assembler = FrameAssembler(ignore_stray_empty_body=False)
    (event,) = assembler.receive_binary(b"")
    assert isinstance(event, ProtocolViolation)


def test_finish_ends_a_body_in_progress() -> None:
    assembler = FrameAssembler()
    assert assembler.finish() == []
    assembler.receive_text(_request("r"))
    assembler.receive_binary(b"abc", fin=False)
    assert assembler.finish() == [MessageReceived(parse_message(_request("r")), b"abc")]
    assert not assembler.awaiting_body
    assert assembler.finish() == []


def test_finish_after_overflow_is_a_violation() -> None:
    assembler = FrameAssembler(max_body=2)
    assembler.receive_text(_request("r"))
    assembler.receive_binary(b"abc", fin=False)
    (event,) = assembler.finish()
    assert isinstance(event, ProtocolViolation) and event.message is not None


def test_response_and_renew_through_the_assembler() -> None:
    assembler = FrameAssembler()
    assembler.receive_text(serialize_message(Response(request_id="r", status_code=200, has_body=True)))
    (event,) = assembler.receive_binary(b'{ "hey" : "mydata" }')
    assert isinstance(event.message, Response) and event.body == b'{ "hey" : "mydata" }'
    (event,) = assembler.receive_text(serialize_message(RenewToken("t")))
    assert event == MessageReceived(RenewToken("t"))


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["text", "json", "binary"]), st.binary(max_size=40), st.booleans()),
        max_size=25,
    )
)
def test_fuzz_assembler_never_raises(frames: List[Any]) -> None:
    assembler = FrameAssembler(max_body=64)
    for kind, data, fin in frames:
        if kind == "binary":
            events = assembler.receive_binary(data, fin=fin)
        elif kind == "json":
            events = assembler.receive_text(_request(data.hex(), body=bool(data)), fin=fin)
        else:
            events = assembler.receive_text(data.decode("latin-1"), fin=fin)
        assert all(isinstance(e, (MessageReceived, ProtocolViolation)) for e in events)
    assert all(isinstance(e, (MessageReceived, ProtocolViolation)) for e in assembler.finish())
