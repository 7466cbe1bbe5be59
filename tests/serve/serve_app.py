"""The WSGI application the serve tests run in real worker processes (imported from this directory).

``/`` answers the worker's pid (so a test can tell workers apart), ``/slow?s=N`` sleeps N seconds
(appending a line to $SERVE_TEST_MARKS first, so a test knows it is in flight), ``/id`` answers
the relay's request id, ``/addr`` REMOTE_ADDR, ``/boom`` raises.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable
from urllib.parse import parse_qs


def application(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/slow":
        marks = os.environ.get("SERVE_TEST_MARKS")
        if marks:
            with open(marks, "a", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
        time.sleep(float(query.get("s", ["1"])[0]))
        body = b"slow done"
    elif path == "/id":
        body = str(environ.get("hybridconn.request_id")).encode()
    elif path == "/addr":
        body = str(environ.get("REMOTE_ADDR")).encode()
    elif path == "/boom":
        raise RuntimeError("boom")
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Worker-Pid", str(os.getpid()))])
    return [body]
