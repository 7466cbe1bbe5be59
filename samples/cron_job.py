"""A batch job (run it from cron, a scheduler or CI): build a report, send it through the relay, exit.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=reports' python samples/cron_job.py

    # crontab: every night at 02:00
    0 2 * * *  HYBRIDCONN_CONNECTION_STRING='...' /path/to/venv/bin/python /path/to/cron_job.py

Exit code 0 when the listener accepted the report, 1 otherwise, so the scheduler
notices a failure. A listener that is briefly offline (reconnecting) is retried
a few times. Without HYBRIDCONN_CONNECTION_STRING it starts an embedded relay
emulator and a stand-in listener that prints what it receives.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import sys
import time
from typing import Any, Dict, Iterator

import hybridconn
from hybridconn.emulator import RelayEmulator

ATTEMPTS = 3
RETRY_DELAY = 2.0  # seconds between attempts while no listener is online


def build_report() -> Dict[str, Any]:
    disk = shutil.disk_usage("/")
    return {
        "host": platform.node(),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "disk_free_percent": round(100 * disk.free / disk.total, 1),
        "python": platform.python_version(),
    }


def send_report(cs: str, report: Dict[str, Any]) -> int:
    with hybridconn.HybridConnectionClient.from_connection_string(cs) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = client.request("POST", "/reports", json=report, timeout=60)
            except hybridconn.ListenerUnavailableError:
                print(f"attempt {attempt}: no listener online", file=sys.stderr)
                if attempt < ATTEMPTS:
                    time.sleep(RETRY_DELAY)
                continue
            except hybridconn.HybridConnectionError as exc:  # auth, timeout, network: not worth retrying
                print(f"report not sent: {exc}", file=sys.stderr)
                return 1
            print(f"report sent: {response.status_code} {response.text.strip()}")
            return 0 if response.ok else 1
    print(f"report not sent after {ATTEMPTS} attempts", file=sys.stderr)
    return 1


@contextlib.contextmanager
def relay_connection_string(name: str = "reports") -> Iterator[str]:
    """$HYBRIDCONN_CONNECTION_STRING, or an embedded emulator with a stand-in listener."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if given:
        yield given
        return
    with RelayEmulator(hybrid_connections=[name]) as relay:
        cs = relay.connection_string(name)
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)

        @listener.on_request
        def receive(request: hybridconn.RelayedRequest) -> hybridconn.RelayedResponse:
            print(f"stand-in listener received: {request.json()}")
            return hybridconn.RelayedResponse(status=201, body=b"stored\n")

        listener.open(timeout=30)
        try:
            yield cs
        finally:
            listener.close()


def main() -> int:
    with relay_connection_string() as cs:
        return send_report(cs, build_report())


if __name__ == "__main__":
    sys.exit(main())
