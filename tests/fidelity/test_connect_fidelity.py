"""A raw sender on ``/$hc/path`` without ``sb-hc-action`` connects (Microsoft's tests do this)."""

from __future__ import annotations

from typing import Any

from tests.support.endpoints import echo_connection, make_listener
from tests.support.plain_clients import open_ws, shut, token


def test_a_connect_without_sb_hc_action_is_a_connect(relay: Any) -> None:
    listener = make_listener(relay)
    listener.on_connection = echo_connection
    with listener:
        listener.open(timeout=15)
        ws = open_ws(f"ws://127.0.0.1:{relay.port}/$hc/hc1", [f"ServiceBusAuthorization: {token(relay, 'hc1')}"])
        try:
            ws.send("hi")
            assert ws.recv() == "hi"
        finally:
            shut(ws)
