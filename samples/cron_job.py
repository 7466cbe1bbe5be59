"""A batch job (run it from cron, a scheduler or CI): build a report, send it through the relay, exit.

    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=reports' python samples/cron_job.py

    # crontab: every night at 02:00
    0 2 * * *  HYBRIDCONN_CONNECTION_STRING='...' /path/to/venv/bin/python /path/to/cron_job.py

Exit code 0 when the listener accepted the report, 1 otherwise, so the scheduler
notices a failure. A listener that is briefly offline (reconnecting) is retried
a few times. Without HYBRIDCONN_CONNECTION_STRING it says where to get one and
exits 2 (try ``hybridconn listen --path reports --echo``, which prints the line to paste):
a sender never starts a listener of its own, so "report sent" means a real listener got it.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import sys
import time
from typing import Any, Dict, Optional

import hybridconn

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


def relay_connection_string() -> Optional[str]:
    """$HYBRIDCONN_CONNECTION_STRING; without it, say where to get one (a sender never fakes its listener)."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if not given:
        print(
            "HYBRIDCONN_CONNECTION_STRING is not set: run `hybridconn listen --path reports --echo` "
            "in another terminal and paste "
            "the export line it prints, or export your namespace's connection string",
            file=sys.stderr,
        )
    return given or None


def main() -> int:
    cs = relay_connection_string()
    if cs is None:
        return 2
    return send_report(cs, build_report())


if __name__ == "__main__":
    sys.exit(main())
