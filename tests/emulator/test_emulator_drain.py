"""stop(drain=...) lets HTTP requests in flight finish before connections are dropped."""

from __future__ import annotations

import threading

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import BackgroundCall, Control, http_get, token


def _request(relay: RelayEmulator) -> int:
    response = http_get(f"{relay.http_base}/hc1/slow", headers={"ServiceBusAuthorization": token(relay, "hc1")})
    return response.status_code


def test_a_draining_stop_waits_for_the_answer_in_flight() -> None:
    relay = RelayEmulator(hybrid_connections=("hc1",), response_timeout=10.0)
    relay.start()
    control = Control(relay)
    try:
        sender = BackgroundCall(_request, relay)
        request, _ = control.recv_request()
        stopping = threading.Event()

        def stop() -> None:
            stopping.set()
            relay.stop(drain=10.0)

        stopper = BackgroundCall(stop)
        assert stopping.wait(10)
        control.respond(request["id"], 200, body=b"made it")
        assert sender.join() == 200
        stopper.join()
    finally:
        control.close()
        relay.close()


def test_without_drain_a_stop_fails_the_request_in_flight() -> None:
    relay = RelayEmulator(hybrid_connections=("hc1",), response_timeout=10.0)
    relay.start()
    control = Control(relay)
    try:
        sender = BackgroundCall(_request, relay)
        control.recv_request()
        relay.stop()
        try:
            status = sender.join()
        except Exception:  # noqa: BLE001 - a dropped connection is the other way to fail
            status = None
        assert status != 200
    finally:
        control.close()
        relay.close()
