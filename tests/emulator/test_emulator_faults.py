"""Faults on demand, TLS with a self-signed certificate, the CLI and the pytest fixture."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests
import websocket

from hybridconn.emulator import DEFAULT_KEY, DEFAULT_KEY_NAME, RelayEmulator
from hybridconn.auth import generate_sas_token
from hybridconn.emulator.tls import make_self_signed
from tests.support.plain_clients import BackgroundCall, Control, hc_url, open_ws, refused, shut, token


def _recv_end(channel: Control) -> object:
    """What ends the channel: a close frame's code, or "abrupt" for a dropped TCP connection."""
    try:
        opcode, payload = channel.recv_frame(timeout=10)
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return "abrupt"
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    return int.from_bytes(payload[:2], "big")


def test_drop_all_control_channels_abruptly(relay: RelayEmulator) -> None:
    channels = [Control(relay) for _ in range(2)]
    try:
        assert relay.drop_control_channels("hc1") == 2
        assert [_recv_end(c) for c in channels] == ["abrupt", "abrupt"]
        assert relay.listener_count("hc1") == 0
    finally:
        for channel in channels:
            channel.close()


def test_drop_one_listener_with_a_close_code(relay: RelayEmulator) -> None:
    keep, drop = Control(relay, query="sb-hc-id=keep"), Control(relay, query="sb-hc-id=drop")
    try:
        assert relay.drop_control_channels("hc1", listener_id="drop", code=1011) == 1
        assert _recv_end(drop) == 1011
        assert relay.listener_ids("hc1") == ["keep"]
    finally:
        keep.close()
        drop.close()


def test_refuse_listeners_for_a_while(relay: RelayEmulator) -> None:
    relay.refuse_listeners("hc1", 1.0)
    assert refused(hc_url(relay, "hc1", "listen"), [f"ServiceBusAuthorization: {token(relay)}"]).status_code == 503
    time.sleep(1.2)  # the refusal window is wall-clock; nothing to wait on
    Control(relay).close()


def test_stalled_control_channel_is_a_silent_half_open() -> None:
    with RelayEmulator(response_timeout=1.0) as relay:
        _stall_and_check(relay)


def _stall_and_check(relay: RelayEmulator) -> None:
    channel = Control(relay)
    try:
        assert relay.stall_control_channels("hc1") == 1
        assert relay.listener_count("hc1") == 0  # no longer counted as online
        channel.ws.ping(b"anyone?")
        channel.ws.settimeout(1.0)
        with pytest.raises(websocket.WebSocketTimeoutException):
            channel.ws.recv_data(control_frame=True)  # no pong, no close: silence
        response = requests.get(f"{relay.http_base}/hc1", headers={"ServiceBusAuthorization": token(relay)}, timeout=20)
        assert response.status_code == 504  # routed to the half-open channel, never answered
    finally:
        channel.close()


def test_restart_on_the_same_port(relay: RelayEmulator) -> None:
    channel = Control(relay)
    port = relay.port
    try:
        relay.restart()
        assert relay.port == port
        assert _recv_end(channel) == "abrupt"
        fresh = Control(relay)
        assert relay.wait_for_listeners("hc1", 1)
        fresh.close()
    finally:
        channel.close()


def test_stop_is_idempotent_and_bounded() -> None:
    relay = RelayEmulator().start()
    channel = Control(relay)
    started = time.monotonic()
    relay.stop(timeout=5)
    relay.stop(timeout=5)
    channel.close()
    assert not relay.running and time.monotonic() - started < 30  # generous: "returns", not a speed goal


def test_tls_self_signed(tmp_path: object) -> None:
    with RelayEmulator(tls="self-signed") as relay:
        assert relay.namespace.startswith("wss://") and relay.certificate_path
        assert "UseDevelopmentEmulator" not in relay.connection_string()
        ssl_options = {"ca_certs": relay.certificate_path}
        tok = token(relay)
        control = websocket.create_connection(
            hc_url(relay, "hc1", "listen"), header=[f"ServiceBusAuthorization: {tok}"], sslopt=ssl_options, timeout=10
        )
        try:
            call = BackgroundCall(
                requests.get,
                f"{relay.http_base}/hc1/s",
                headers={"ServiceBusAuthorization": tok},
                verify=relay.certificate_path,
                timeout=10,
            )
            request = json.loads(control.recv())["request"]
            assert request["address"].startswith("wss://")
            control.send(json.dumps({"response": {"requestId": request["id"], "statusCode": 200, "body": True}}))
            control.send_binary(b"secure")
            assert call.join().content == b"secure"
            sender_call = BackgroundCall(
                websocket.create_connection,
                hc_url(relay, "hc1", "connect"),
                header=[f"ServiceBusAuthorization: {tok}"],
                sslopt=ssl_options,
                timeout=10,
            )
            accept = json.loads(control.recv())["accept"]
            listener = websocket.create_connection(accept["address"], sslopt=ssl_options, timeout=10)
            sender = sender_call.join()
            try:
                sender.send("over tls")
                assert listener.recv() == "over tls"
            finally:
                shut(sender)
                shut(listener)
        finally:
            shut(control)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{relay.http_base}/hc1", timeout=10)  # untrusted without the certificate


def test_tls_with_certificate_files(tmp_path: object) -> None:
    cert, key = make_self_signed(str(tmp_path))
    with RelayEmulator(tls=(cert, key)) as relay:
        response = requests.get(
            f"{relay.http_base}/hc1", headers={"ServiceBusAuthorization": token(relay)}, verify=cert, timeout=10
        )
        assert response.status_code == 502  # reached over TLS; no listener


def test_cli_prints_connection_strings_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridconn", "emulator", "--port", "0", "--hc", "a", "--hc", "b", "--key", "k1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline().strip() for _ in range(2)]  # type: ignore[union-attr]
        assert all(line.startswith("export HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://127.0.0.1:") for line in lines)
        assert lines[0].endswith("EntityPath=a;UseDevelopmentEmulator=true'") and "EntityPath=b" in lines[1]
        port = int(lines[0].split("127.0.0.1:")[1].split("/")[0])
        tok = generate_sas_token(f"http://127.0.0.1:{port}/a", DEFAULT_KEY_NAME, "k1", 60)
        ws = open_ws(f"ws://127.0.0.1:{port}/$hc/a?sb-hc-action=listen", [f"ServiceBusAuthorization: {tok}"])
        shut(ws)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        log = process.stderr.read()  # type: ignore[union-attr]
        assert "online on a" in log and "k1" not in log and "sig=" not in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def test_pytest_fixture(relay_emulator: RelayEmulator) -> None:
    assert relay_emulator.running and "EntityPath=hc1" in relay_emulator.connection_string()
    assert DEFAULT_KEY in relay_emulator.connection_string()
