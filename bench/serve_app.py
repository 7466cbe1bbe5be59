"""The WSGI application of bench/serve_workers.py: 13-byte answers, with or without CPU work.

``/small`` answers at once; ``/work?ms=N`` first spends about N ms of CPU in Python (a
template render or an ORM query's Python side costs that), so the listener process is the
bottleneck and more worker processes can help.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Dict, Iterable

BODY = b"hello, relay\n"


def _burn(ms: float) -> None:
    until = time.process_time() + ms / 1000.0
    block = b"x" * 256
    while time.process_time() < until:
        for _ in range(50):
            block = hashlib.sha256(block).digest() * 8


def application(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/work":
        query = environ.get("QUERY_STRING", "")
        ms = float(query.split("ms=", 1)[1].split("&")[0]) if "ms=" in query else 2.0
        _burn(ms)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
