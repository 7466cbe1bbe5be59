"""The sans-IO protocol core: control messages and their JSON.

Frame pairing is tested in test_protocol_pairing.py, the shared rules in test_protocol_rules.py.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridconn.exceptions import ProtocolError
from hybridconn.protocol import (
    Accept,
    RenewToken,
    Request,
    Response,
    parse_message,
    serialize_message,
)

FUZZ = settings(max_examples=200, deadline=None)

# --------------------------------------------------------------------------------------
# The spec's own examples (spec/hybrid-connections-protocol.txt), copied verbatim.

SPEC_ACCEPT = """{
    "accept" : {
        "address" : "wss://dc-node.servicebus.windows.net:443/$hc/{path}?...",
        "id" : "4cb542c3-047a-4d40-a19f-bdc66441e736",
        "connectHeaders" : {
            "Host" : "...",
            "Sec-WebSocket-Protocol" : "...",
            "Sec-WebSocket-Extensions" : "..."
        }
     }
}"""

SPEC_REQUEST = """{
    "request" : {
        "address" : "wss://dc-node.servicebus.windows.net:443/$hc/{path}?...",
        "id" : "42c34cb5-7a04-4d40-a19f-bdc66441e736",
        "requestTarget" : "/abc/def?myarg=value&otherarg=...",
        "method" : "GET",
        "requestHeaders" : {
            "Host" : "...",
            "Content-Type" : "...",
            "User-Agent" : "..."
        },
        "body" : true
     }
}"""

# As printed in the spec: a comma is missing between "responseHeaders" {...} and "body",
# so the example is not valid JSON. We reject it (a ProtocolError, not a crash) and parse
# the corrected form below.
SPEC_RESPONSE_AS_PRINTED = """{
    "response" : {
        "requestId" : "42c34cb5-7a04-4d40-a19f-bdc66441e736",
        "statusCode" : "200",
        "responseHeaders" : {
            "Content-Type" : "application/json",
            "Content-Encoding" : "gzip"
        }
         "body" : true
     }
}"""
SPEC_RESPONSE_CORRECTED = SPEC_RESPONSE_AS_PRINTED.replace('}\n         "body"', '},\n         "body"')

SPEC_RENEW = """{
  "renewToken": {
    "token":
      "SharedAccessSignature sr=http%3a%2f%2fcontoso.servicebus.windows.net%2fhyco%2f&sig=XXXXXXXXXX%3d&se=1471633754&skn=SasKeyName"
  }
}"""  # noqa: E501 - the protocol document's example, verbatim


def test_spec_accept_example() -> None:
    message = parse_message(SPEC_ACCEPT)
    assert message == Accept(
        address="wss://dc-node.servicebus.windows.net:443/$hc/{path}?...",
        id="4cb542c3-047a-4d40-a19f-bdc66441e736",
        connect_headers={"Host": "...", "Sec-WebSocket-Protocol": "...", "Sec-WebSocket-Extensions": "..."},
    )


def test_spec_request_example() -> None:
    message = parse_message(SPEC_REQUEST)
    assert isinstance(message, Request)
    assert message.address.startswith("wss://dc-node.servicebus.windows.net:443/$hc/")
    assert message.id == "42c34cb5-7a04-4d40-a19f-bdc66441e736"
    assert message.request_target == "/abc/def?myarg=value&otherarg=..."
    assert message.method == "GET"
    assert message.request_headers == {"Host": "...", "Content-Type": "...", "User-Agent": "..."}
    assert message.has_body is True
    assert not message.is_address_only


def test_spec_response_example_as_printed_is_invalid_json_and_rejected() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(SPEC_RESPONSE_AS_PRINTED)
    with pytest.raises(ProtocolError, match="not valid JSON"):
        parse_message(SPEC_RESPONSE_AS_PRINTED)


def test_spec_response_example_corrected() -> None:
    message = parse_message(SPEC_RESPONSE_CORRECTED)
    assert message == Response(
        request_id="42c34cb5-7a04-4d40-a19f-bdc66441e736",
        status_code=200,  # the spec writes "200", a string
        response_headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        has_body=True,
    )


def test_spec_renew_token_example() -> None:
    message = parse_message(SPEC_RENEW)
    assert isinstance(message, RenewToken)
    assert message.token.startswith("SharedAccessSignature sr=http%3a%2f%2fcontoso")


# --------------------------------------------------------------------------------------
# Dataclasses and the field table


@pytest.mark.parametrize("cls", [Accept, Request, Response, RenewToken])
def test_messages_are_frozen_dataclasses(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_frozen_messages_refuse_assignment() -> None:
    message = Request(address="a", id="1", method="GET", request_target="/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.id = "2"  # type: ignore[misc]


def test_field_names() -> None:
    def names(cls: type) -> List[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name != "extra"]

    assert names(Accept) == ["address", "id", "connect_headers"]
    assert names(Request) == ["address", "id", "method", "request_target", "request_headers", "has_body"]
    assert names(Response) == ["request_id", "status_code", "status_description", "response_headers", "has_body"]
    assert names(RenewToken) == ["token"]


def test_field_table_maps_snake_case_to_camel_case_on_the_wire() -> None:
    wire = json.loads(
        serialize_message(
            Response(request_id="r", status_code=201, status_description="Created",
                     response_headers={"X": "1"}, has_body=True)
        )
    )
    assert wire == {
        "response": {"requestId": "r", "statusCode": 201, "statusDescription": "Created",
                     "responseHeaders": {"X": "1"}, "body": True}
    }
    wire = json.loads(
        serialize_message(
            Request(address="wss://a/$hc/h", id="i", method="PUT", request_target="/h/x",
                    request_headers={"A": "b"}, has_body=False)
        )
    )
    assert wire == {
        "request": {"address": "wss://a/$hc/h", "id": "i", "method": "PUT", "requestTarget": "/h/x",
                    "requestHeaders": {"A": "b"}, "body": False}
    }
    wire = json.loads(serialize_message(Accept(address="wss://a", id="i", connect_headers={"H": "v"})))
    assert wire == {"accept": {"address": "wss://a", "id": "i", "connectHeaders": {"H": "v"}}}
    assert json.loads(serialize_message(RenewToken("tok"))) == {"renewToken": {"token": "tok"}}


# --------------------------------------------------------------------------------------
# Liberal parsing


@pytest.mark.parametrize("code", ['200', '"200"', '" 200 "', "200.0"])
def test_status_code_as_number_or_numeric_string(code: str) -> None:
    message = parse_message('{"response":{"requestId":"r","statusCode":%s}}' % code)
    assert isinstance(message, Response)
    assert message.status_code == 200
    assert isinstance(message.status_code, int)


def test_unknown_keys_are_kept_in_extra() -> None:
    message = parse_message(
        '{"accept":{"address":"wss://x","id":"1","connectHeaders":{},'
        '"remoteEndpoint":{"address":"10.0.0.1","port":4711},"future":[1,2]}}'
    )
    assert message.extra == {"remoteEndpoint": {"address": "10.0.0.1", "port": 4711}, "future": [1, 2]}
    # extra doesn't take part in equality, but it does survive serialisation
    assert message == Accept(address="wss://x", id="1")
    again = json.loads(serialize_message(message))
    assert again["accept"]["remoteEndpoint"] == {"address": "10.0.0.1", "port": 4711}


def test_optional_fields_missing() -> None:
    request = parse_message('{"request":{"id":"only-an-id"}}')
    assert request == Request(address="", id="only-an-id")
    assert request.method is None and request.request_target is None
    assert request.request_headers == {} and request.has_body is False

    address_only = parse_message('{"request":{"address":"wss://x/$hc/h?sb-hc-action=request","id":"7"}}')
    assert isinstance(address_only, Request) and address_only.is_address_only

    response = parse_message('{"response":{"requestId":"r","statusCode":204}}')
    assert response == Response(request_id="r", status_code=204)
    assert response.status_description is None and response.has_body is False

    accept = parse_message('{"accept":{"address":"wss://x/$hc/h?sb-hc-action=accept"}}')
    assert isinstance(accept, Accept) and accept.id == "" and accept.connect_headers == {}


def test_null_optional_fields_count_as_missing() -> None:
    message = parse_message('{"response":{"requestId":"r","statusCode":200,"statusDescription":null,"body":null}}')
    assert message == Response(request_id="r", status_code=200)


def test_header_values_as_numbers_and_lists_become_strings() -> None:
    message = parse_message('{"request":{"id":"1","requestHeaders":{"X-Num":5,"Accept":["a","b"]}}}')
    assert message.request_headers == {"X-Num": "5", "Accept": "a, b"}


def test_bytes_input_is_decoded_as_utf8() -> None:
    assert parse_message('{"renewToken":{"token":"t\u00e9"}}'.encode("utf-8")) == RenewToken("t\u00e9")
    with pytest.raises(ProtocolError, match="UTF-8"):
        parse_message(b'{"renewToken":{"token":"\xff"}}')


# --------------------------------------------------------------------------------------
# Rejections: always ProtocolError, with a clear message


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('"accept"', "JSON object"),
        ("42", "JSON object"),
        ("null", "JSON object"),
        ("{}", "exactly one"),
        ('{"hello":{}}', "exactly one"),
        ('{"accept":{"address":"a","id":"1"},"request":{"id":"2"}}', "exactly one"),
        ('{"accept":[]}', "must be a JSON object"),
        ('{"request":"x"}', "must be a JSON object"),
        ('{"accept":{"id":"1"}}', "address"),
        ('{"request":{"address":"a"}}', "id"),
        ('{"response":{"statusCode":200}}', "requestId"),
        ('{"response":{"requestId":"r"}}', "statusCode"),
        ('{"renewToken":{}}', "token"),
        ('{"response":{"requestId":"r","statusCode":"OK"}}', "number"),
        ('{"response":{"requestId":"r","statusCode":true}}', "number"),
        ('{"response":{"requestId":"r","statusCode":"\u00b2"}}', "number"),
        ('{"response":{"requestId":"r","statusCode":"%s"}}' % ("9" * 5000), "number"),
        ('{"response":{"requestId":"r","statusCode":200.5}}', "number"),
        ('{"response":{"requestId":"r","statusCode":[200]}}', "number"),
        ('{"response":{"requestId":"r","statusCode":99}}', "100-599"),
        ('{"response":{"requestId":"r","statusCode":600}}', "100-599"),
        ('{"response":{"requestId":5,"statusCode":200}}', "string"),
        ('{"request":{"id":"1","body":"yes"}}', "true or false"),
        ('{"request":{"id":"1","body":1}}', "true or false"),
        ('{"request":{"id":"1","requestHeaders":[]}}', "JSON object"),
        ('{"request":{"id":"1","requestHeaders":{"A":{"b":1}}}}', "string"),
        ('{"request":{"id":"1","requestHeaders":{"A":null}}}', "string"),
        ('{"request":{"id":"1","method":7}}', "string"),
        ('{"accept":{"address":"a","connectHeaders":"x"}}', "JSON object"),
        ('{"renewToken":{"token":123}}', "string"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_rejections_raise_protocol_error(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_message(text)


@pytest.mark.parametrize("value", [None, 42, 3.5, ["{}"], {"accept": {}}])
def test_non_text_input_raises_protocol_error(value: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_message(value)


def test_error_preview_never_shows_a_token() -> None:
    broken = '{"renewToken":{"token":"SharedAccessSignature sig=SECRETSIG&se=1&skn=x"'
    with pytest.raises(ProtocolError) as info:
        parse_message(broken)
    assert "SECRETSIG" not in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["address", "id", "connectHeaders", "method", "requestTarget", "requestHeaders", "body",
     "requestId", "statusCode", "statusDescription", "responseHeaders", "token", "remoteEndpoint", "x"]
)
message_like = st.dictionaries(
    st.sampled_from(["accept", "request", "response", "renewToken", "other"]),
    json_values | st.dictionaries(field_names, json_values, max_size=7),
    max_size=3,
)


def _parse_only_protocol_errors(text: Any) -> None:
    try:
        message = parse_message(text)
    except ProtocolError:
        return
    assert isinstance(message, (Accept, Request, Response, RenewToken))


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json_only_raises_protocol_error(value: Any) -> None:
    _parse_only_protocol_errors(json.dumps(value))


@FUZZ
@given(message_like)
def test_fuzz_message_shaped_json_only_raises_protocol_error(value: Dict[str, Any]) -> None:
    _parse_only_protocol_errors(json.dumps(value))


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_arbitrary_text_only_raises_protocol_error(text: Any) -> None:
    _parse_only_protocol_errors(text)


# --------------------------------------------------------------------------------------
# Strict serialisation


def test_serialize_is_compact_json() -> None:
    text = serialize_message(Request(address="a", id="1", method="GET", request_target="/", has_body=False))
    assert " " not in text and "\n" not in text
    assert text.startswith('{"request":{')


def test_serialize_status_code_is_a_number_and_body_always_present() -> None:
    response = parse_message('{"response":{"requestId":"r","statusCode":"404"}}')
    wire = json.loads(serialize_message(response))["response"]
    assert wire["statusCode"] == 404 and isinstance(wire["statusCode"], int)
    assert wire["body"] is False
    request = json.loads(serialize_message(Request(address="a", id="1")))["request"]
    assert request["body"] is False
    assert "method" not in request and "requestTarget" not in request  # None fields are omitted


def test_serialize_keeps_unicode_readable() -> None:
    text = serialize_message(Response(request_id="r", status_code=200, status_description="Gr\u00fc\u00dfe"))
    assert "Gr\u00fc\u00dfe" in text


def test_serialize_refuses_non_messages() -> None:
    with pytest.raises(TypeError):
        serialize_message({"response": {}})  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [99, 600, 0, -200, 1000])
def test_response_refuses_out_of_range_codes(code: int) -> None:
    with pytest.raises(ProtocolError):
        Response(request_id="r", status_code=code)


@pytest.mark.parametrize("code", [502, 504])
def test_a_response_may_carry_502_and_504(code: int) -> None:
    # The service delivers a listener's 502/504 (Microsoft's StatusCodes test); Via tells them apart.
    message = parse_message('{"response":{"requestId":"r","statusCode":%d}}' % code)
    assert isinstance(message, Response) and message.status_code == code


@pytest.mark.parametrize("code", [True, "200", 200.0, None])
def test_response_refuses_non_integer_codes(code: Any) -> None:
    with pytest.raises(ProtocolError):
        Response(request_id="r", status_code=code)


@pytest.mark.parametrize("code", [100, 200, 301, 404, 500, 501, 503, 599])
def test_response_allows_other_codes(code: int) -> None:
    assert Response(request_id="r", status_code=code).status_code == code


def test_renew_token_repr_hides_the_token() -> None:
    assert "secret-token" not in repr(RenewToken("secret-token"))
    assert "secret-token" not in str(RenewToken("secret-token"))


# Round trips: parse(serialize(m)) == m

texts = st.text(max_size=30)
headers = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=30), max_size=5)
accepts = st.builds(Accept, address=texts, id=texts, connect_headers=headers)
requests_ = st.builds(
    Request,
    address=texts,
    id=texts,
    method=st.none() | st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    request_target=st.none() | texts,
    request_headers=headers,
    has_body=st.booleans(),
)
responses = st.builds(
    Response,
    request_id=texts,
    status_code=st.integers(100, 599),
    status_description=st.none() | texts,
    response_headers=headers,
    has_body=st.booleans(),
)
renewals = st.builds(RenewToken, token=texts)


@FUZZ
@given(accepts | requests_ | responses | renewals)
def test_round_trip(message: Any) -> None:
    text = serialize_message(message)
    assert parse_message(text) == message
    assert parse_message(text.encode("utf-8")) == message
    assert serialize_message(parse_message(text)) == text
