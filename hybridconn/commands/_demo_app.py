"""The application ``hybridconn demo`` serves: a few HTTP routes and a WebSocket echo.

It is a WSGI application served with :func:`hybridconn.serve_wsgi`, the way a
Django or Flask app would be.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs

from ..wsgi import serve_wsgi


MAX_GENERATED = 16 * 1024 * 1024  # /bytes?size= is capped so a stray request cannot exhaust memory

StartResponse = Callable[..., Any]


def _route(method: str, path: str, query: str, body: bytes) -> Tuple[int, str, bytes]:
    """(status, content type, body) for one request."""
    if path == "/hello" and method in ("GET", "HEAD"):
        name = parse_qs(query).get("name", ["world"])[0]
        return 200, "text/plain; charset=utf-8", f"hello {name}".encode()
    if path == "/echo" and method == "POST":
        return 200, "application/octet-stream", body
    if path == "/bytes" and method == "GET":
        try:
            size = int(parse_qs(query).get("size", ["0"])[0])
        except ValueError:
            return 400, "text/plain", b"size must be an integer"
        if not 0 <= size <= MAX_GENERATED:
            return 400, "text/plain", b"size out of range"
        pattern = bytes(range(256))
        return 200, "application/octet-stream", (pattern * (size // 256 + 1))[:size]
    return 404, "text/plain", b"not found: try /hello, /echo or /bytes?size=N"


class DemoApp:
    """Installs the demo's handlers on a listener and remembers which path the last request took."""

    def __init__(self) -> None:
        #: True/False when the listener saw the last request arrive by rendezvous or not; None if unknown.
        self.last_rendezvous: Optional[bool] = None
        self.kind = "WSGI app + WebSocket echo"

    def wsgi(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        self.last_rendezvous = environ.get("hybridconn.via_rendezvous")
        status, content_type, payload = _route(
            environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), body
        )
        headers: List[Tuple[str, str]] = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers)
        return [payload]

    @staticmethod
    def echo(conn: Any) -> None:
        for message in conn:
            conn.send(message)

    def install(self, listener: Any) -> None:
        serve_wsgi(self.wsgi, listener)
        listener.on_connection(self.echo)
