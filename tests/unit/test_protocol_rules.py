"""The protocol's shared rules (statuses, reason phrases, sizes, headers), and its freedom from I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridconn.protocol as protocol
from hybridconn.protocol import (
    ACCEPT_WINDOW,
    CONTROL_CHANNEL_BODY_LIMIT,
    FRAGMENT_SIZE,
    HEADER_METADATA_LIMIT,
    MAX_LISTENERS,
    RELAY_STATUSES,
    RESPONSE_DEADLINE,
    STRIPPED_HEADERS,
    Response,
    fits_control_channel,
    header_metadata_size,
    header_value,
    is_printable_reason,
    is_relay_status,
    is_stripped_header,
    listener_may_send,
    parse_subprotocols,
    printable_reason,
    standard_phrase,
    status_description,
    status_problem,
    strip_hop_headers,
)

FUZZ = settings(max_examples=200, deadline=None)


# --------------------------------------------------------------------------------------
# Statuses


@pytest.mark.parametrize("status", [200, 204, 301, 404, 500, 501, 503, 599])
def test_a_listener_may_send_final_statuses(status: int) -> None:
    assert listener_may_send(status) and status_problem(status) is None
    Response(request_id="r", status_code=status)  # and the message can be built


@pytest.mark.parametrize("status", [502, 504])
def test_502_and_504_are_the_relays_own_and_a_listener_may_send_them_too(status: int) -> None:
    # The service delivers a listener's 502/504 (Microsoft's StatusCodes test); Via tells them apart.
    assert status in RELAY_STATUSES and is_relay_status(status)
    assert listener_may_send(status) and status_problem(status) is None
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
    assert (
        header_metadata_size(text) == header_metadata_size(raw) == header_metadata_size(list(text.items())) == expected
    )


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


# --------------------------------------------------------------------------------------
# Limits and headers


def test_limits() -> None:
    assert CONTROL_CHANNEL_BODY_LIMIT == 65_536
    assert HEADER_METADATA_LIMIT == 32 * 1024
    assert RESPONSE_DEADLINE == 60
    assert ACCEPT_WINDOW == 30
    assert MAX_LISTENERS == 25


def test_fits_control_channel_is_inclusive() -> None:
    assert fits_control_channel(0)
    assert fits_control_channel(65_536)
    assert not fits_control_channel(65_537)
    assert fits_control_channel(10, {"A": "b"})
    assert not fits_control_channel(10, {"X-Big": "v" * HEADER_METADATA_LIMIT})


def test_stripped_header_names() -> None:
    assert STRIPPED_HEADERS == {
        "connection", "content-length", "host", "te", "trailer", "transfer-encoding", "upgrade", "close"
    }


def test_strip_hop_headers_case_insensitive_keeps_via() -> None:
    given_headers = {
        "CONNECTION": "keep-alive", "content-Length": "5", "Host": "x", "te": "trailers", "Trailer": "X",
        "Transfer-Encoding": "chunked", "UPGRADE": "websocket", "Close": "1",
        "Via": "1.1 proxy", "Content-Type": "text/plain", "X-Custom": "y",
    }
    assert strip_hop_headers(given_headers) == {"Via": "1.1 proxy", "Content-Type": "text/plain", "X-Custom": "y"}
    # pairs work too, and order is kept
    assert strip_hop_headers([("host", "a"), ("B", "1"), ("via", "v")]) == {"B": "1", "via": "v"}
    assert is_stripped_header("Transfer-ENCODING") and not is_stripped_header("Via")


# --------------------------------------------------------------------------------------
# protocol.py is sans-IO

FORBIDDEN = {"socket", "threading", "websocket", "requests", "ssl", "select", "asyncio"}


def _imported_modules(path: Path) -> List[str]:
    found: List[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


# protocol.py and the private package it re-exports (hybridconn/_protocol/).
PROTOCOL_SOURCES = [Path(protocol.__file__)] + sorted(
    path for path in (Path(protocol.__file__).parent / "_protocol").glob("*.py") if path.name != "__init__.py"
)


@pytest.mark.parametrize("source", PROTOCOL_SOURCES, ids=lambda path: path.name)
def test_protocol_source_imports_no_io_modules(source: Path) -> None:
    imported = _imported_modules(source)
    assert imported, "found no imports at all: the AST walk is broken"
    assert not {name.split(".")[0] for name in imported} & FORBIDDEN


def test_protocol_imports_with_io_modules_blocked() -> None:
    """Import hybridconn.protocol in a fresh interpreter where the I/O modules cannot load."""
    script = textwrap.dedent(
        """
        import sys
        blocked = {"socket", "threading", "websocket", "requests", "ssl", "asyncio"}
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError("blocked for the test: " + name)
                return None
        for name in list(sys.modules):
            if name.split(".")[0] in blocked:
                del sys.modules[name]
        sys.meta_path.insert(0, Blocker())
        # hybridconn/__init__.py exports the whole API (auth needs requests); load the package
        # as a bare namespace so only protocol.py and what it imports itself get executed.
        import types
        package = types.ModuleType("hybridconn")
        package.__path__ = [PACKAGE_DIR]
        sys.modules["hybridconn"] = package
        import hybridconn.protocol as p
        m = p.parse_message('{"response":{"requestId":"r","statusCode":"200"}}')
        assert p.serialize_message(m) == (
            '{"response":{"requestId":"r","statusCode":200,"responseHeaders":{},"body":false}}'
        )
        leaked = sorted(n for n in sys.modules if n.split(".")[0] in blocked)
        assert not leaked, leaked
        print("ok")
        """
    )
    script = script.replace("PACKAGE_DIR", repr(str(Path(protocol.__file__).parent)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
