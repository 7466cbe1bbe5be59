"""Invalid UTF-8 in a text message on the listener's control channel fails the channel with 1007
(RFC 6455 section 8.1) instead of being guessed at with U+FFFD, and a message over
``CONTROL_MESSAGE_SIZE`` fails it with 1009 before it is held; either way the listener reconnects
and answers the next request."""

from __future__ import annotations

from typing import Iterator

import pytest

from hybridconn import HybridConnectionListener, RelayedRequest, RelayedResponse
from hybridconn.protocol import CONTROL_MESSAGE_SIZE
from tests.support.fake_relay import TEXT, ChannelClosed, FakeRelay, frame


@pytest.fixture
def relay() -> Iterator[FakeRelay]:  # type: ignore[override]
    fake = FakeRelay()
    try:
        yield fake
    finally:
        fake.close()


@pytest.mark.parametrize("payload, code", [
    (b'{"request": "\xff\xfe"}', 1007), (b"\xc3", 1007), (b'{"x": "\xed\xa0\x80"}', 1007),
    (b'"' + b"x" * CONTROL_MESSAGE_SIZE, 1009),  # one byte over the limit
])
def test_a_bad_text_message_on_the_control_channel_fails_it(relay: FakeRelay, payload: bytes, code: int) -> None:
    listener = HybridConnectionListener(relay.namespace, "hc1", None, backoff=(0, 0.05), jitter=0.0,
                                        ping_interval=60, io_timeout=10, connect_timeout=10, max_workers=2)

    @listener.on_request
    def echo(req: RelayedRequest) -> RelayedResponse:
        return RelayedResponse(body=b"echo " + req.body)

    listener.open(timeout=15)
    try:
        channel = relay.next_channel()
        channel.send_raw(frame(TEXT, payload))
        with pytest.raises(ChannelClosed) as caught:
            while True:
                channel.read_frame(timeout=15)
        assert str(caught.value) == f"close frame {code.to_bytes(2, 'big').hex()}"
        channel.close()
        again = relay.next_channel(timeout=15)  # the listener came back on a new channel
        request_id = "after-1007"
        again.send_json({"request": {"address": relay.address("request", request_id), "id": request_id,
                                     "method": "POST", "requestTarget": "/hc1/x", "requestHeaders": {},
                                     "body": True}}, b"hi")
        response, body = again.read_response(request_id, timeout=15)
        assert response["statusCode"] == 200 and body == b"echo hi"
    finally:
        listener.close(timeout=10)
