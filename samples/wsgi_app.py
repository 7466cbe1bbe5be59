"""Serve a WSGI application through a hybrid connection: the same way you would serve Django or Flask.

    python samples/wsgi_app.py                 # an embedded relay emulator; prints the URL and a connection string
    HYBRIDCONN_CONNECTION_STRING='Endpoint=sb://...;EntityPath=hc1' python samples/wsgi_app.py

For Django pass ``django.core.wsgi.get_wsgi_application()`` (or run
``hybridconn serve mysite.wsgi:application``); for Flask pass the ``Flask`` object.
Then: hybridconn request GET /hello?name=Ada   (or curl, with a token from hybridconn token).

--once exits after the first request; otherwise Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from typing import Any, Callable, Dict, Iterable, Iterator
from urllib.parse import parse_qs

import hybridconn
from hybridconn.emulator import RelayEmulator


def application(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A plain WSGI app: GET /hello?name=..., POST /form (urlencoded), anything else 404."""
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    if method == "GET" and path == "/hello":
        name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["world"])[0]
        body = f"hello {name}, from {environ['SCRIPT_NAME']}{path}\n".encode()
        status = "200 OK"
    elif method == "POST" and path == "/form":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        fields = parse_qs(environ["wsgi.input"].read(length).decode("utf-8"))
        body = "".join(f"{key}={values[0]}\n" for key, values in sorted(fields.items())).encode("utf-8")
        status = "200 OK"
    else:
        body, status = b"not found\n", "404 Not Found"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def count_requests(app: Callable[..., Iterable[bytes]], served: threading.Event) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware that sets ``served`` once a response has been produced (for --once)."""

    def counted(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        finally:
            served.set()

    return counted


@contextlib.contextmanager
def relay_connection_string(name: str = "hc1") -> Iterator[str]:
    """$HYBRIDCONN_CONNECTION_STRING, or an embedded relay emulator running while the block runs."""
    given = os.environ.get("HYBRIDCONN_CONNECTION_STRING")
    if given:
        yield given
        return
    with RelayEmulator(hybrid_connections=[name]) as relay:
        cs = relay.connection_string(name)
        print(f"embedded relay emulator; senders use:\nexport HYBRIDCONN_CONNECTION_STRING='{cs}'", flush=True)
        yield cs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="exit after one request")
    args = parser.parse_args()
    served = threading.Event()

    with relay_connection_string() as cs:
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)
        hybridconn.serve_wsgi(count_requests(application, served), listener)
        with listener:  # opens (returns once online) and closes at the end of the block
            client = hybridconn.HybridConnectionClient.from_connection_string(cs)
            print(f"serving {client.http_url('/hello')}; Ctrl-C to stop", flush=True)
            try:
                while not (args.once and served.is_set()):
                    served.wait(1.0)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
