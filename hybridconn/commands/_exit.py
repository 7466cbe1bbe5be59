"""The CLI's exit codes and its one-line error messages.

Every command exits with one of :data:`EXIT_CODES` (curl's numbers where curl
has the same failure, so scripts written for curl read them the same way), and
prints a failure as one line on stderr that names command-line options, not
the library's Python arguments: the library's messages are translated here, at
the CLI boundary, and stay as they are for Python callers.
"""

from __future__ import annotations

import errno
import ssl
from typing import List, Tuple

from ..exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HybridConnectionError,
    ListenerUnavailableError,
    ProtocolError,
    RelayConnectionError,
    RelayTimeoutError,
)

OK = 0
#: Any failure without a more specific code below.
ERROR = 1
#: A bad command line, option value, connection string or setting (argparse's own code).
USAGE = 2
#: The relay (or the proxy) could not be reached (curl: "failed to connect").
CONNECT = 7
#: The relay or the peer answered something malformed or unexpected (curl: "weird server reply").
PROTOCOL = 8
#: 404: the namespace has no such hybrid connection (for a WebSocket, also: no listener is online).
NOT_FOUND = 10
#: 502/503: no listener is online for the hybrid connection.
NO_LISTENER = 11
#: The listener refused the WebSocket (its own status and description).
REJECTED = 12
#: ``request --fail`` and an HTTP status of 400 or more (curl: 22).
HTTP_ERROR = 22
#: The relay or the peer did not answer in time (curl: "operation timed out").
TIMEOUT = 28
#: TLS failed: a handshake error or an untrusted certificate (curl: 35/60) - see --ca-cert.
TLS = 35
#: A local address could not be used: the port is taken or the interface does not exist (curl: 45).
ADDRESS = 45
#: The connection was closed by the other side before the command was done (curl: 56).
CLOSED = 56
#: 401/403: the relay refused the credentials (curl: "login denied").
AUTH = 67
#: Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED = 130

#: (code, name, meaning) for ``--help`` and the README; a test keeps the three in step.
EXIT_CODES: Tuple[Tuple[int, str, str], ...] = (
    (OK, "OK", "success"),
    (ERROR, "ERROR", "any other failure"),
    (USAGE, "USAGE", "bad command line, option value, connection string or setting"),
    (CONNECT, "CONNECT", "the relay or proxy could not be reached"),
    (PROTOCOL, "PROTOCOL", "a malformed or unexpected reply"),
    (NOT_FOUND, "NOT_FOUND", "no such hybrid connection (404)"),
    (NO_LISTENER, "NO_LISTENER", "no listener online (502/503, or 404 no listeners connected)"),
    (REJECTED, "REJECTED", "the listener rejected the WebSocket"),
    (HTTP_ERROR, "HTTP_ERROR", "request --fail: HTTP status >= 400"),
    (TIMEOUT, "TIMEOUT", "timed out"),
    (TLS, "TLS", "TLS handshake or certificate failure (see --ca-cert)"),
    (ADDRESS, "ADDRESS", "a local address is in use or unusable"),
    (CLOSED, "CLOSED", "the other side closed the connection first"),
    (AUTH, "AUTH", "the relay refused the credentials (401/403)"),
    (INTERRUPTED, "INTERRUPTED", "Ctrl-C"),
)

_TLS_WORDS = ("TLS", "SSL", "certificate")

# (library text, the CLI's words for it): the library names Python arguments, the CLI its options.
_CLI_WORDS: List[Tuple[str, str]] = [
    (
        "pass path= or add EntityPath to the connection string",
        "pass --path NAME or add ;EntityPath=NAME to the connection string",
    ),
    (
        "pass verify='/path/to/ca.pem' to trust a self-signed relay (such as the emulator)",
        "pass --ca-cert FILE (or set $HYBRIDCONN_CA_CERT; the TLS emulator prints it) to trust a self-signed "
        "relay, or --insecure to skip verification",
    ),
    ("verify=", "--ca-cert "),
    ("; token_provider=None sends no token, for a hybrid connection that requires no client authorization", ""),
    ("pass credential=", "pass --auth MODE"),
    ("pass token_provider= or credential=, not both", "pass --auth or a connection string's key, not both"),
]


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error that ended a command."""
    if isinstance(exc, (AuthenticationError, AuthorizationError)):
        return AUTH
    if isinstance(exc, ListenerUnavailableError):  # before 404: NoListenerConnectedError is both
        return NO_LISTENER
    if isinstance(exc, EndpointNotFoundError):
        return NOT_FOUND
    if isinstance(exc, ConnectionRejectedError):
        return REJECTED
    if isinstance(exc, ConfigurationError):
        return USAGE
    if isinstance(exc, (RelayTimeoutError, TimeoutError)):
        return TIMEOUT
    if isinstance(exc, ConnectionClosed):
        return CLOSED
    if isinstance(exc, ProtocolError):
        return PROTOCOL
    if isinstance(exc, RelayConnectionError):
        return TLS if _is_tls(exc) else CONNECT
    if isinstance(exc, OSError):
        return _os_error_code(exc)
    return ERROR


def _is_tls(exc: BaseException) -> bool:
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__
    return any(word in str(exc) for word in _TLS_WORDS)


def _os_error_code(exc: OSError) -> int:
    if isinstance(exc, ssl.SSLError):
        return TLS
    if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return ADDRESS
    if isinstance(exc, ConnectionError) or exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return CONNECT
    return ERROR


def cli_message(exc: BaseException) -> str:
    """The error as one line naming CLI options (no traceback, no line breaks)."""
    if isinstance(exc, HybridConnectionError) or not isinstance(exc, OSError):
        text = str(exc) or type(exc).__name__
    else:
        text = _os_error_text(exc)
    for library, cli in _CLI_WORDS:
        text = text.replace(library, cli)
    return " ".join((text + _hint(text)).split())


def _hint(text: str) -> str:
    """What a bare TLS failure usually means on the command line."""
    if "WRONG_VERSION_NUMBER" in text:
        return (
            " (the relay answered in plain text: an emulator's connection string needs "
            ";UseDevelopmentEmulator=true, which makes the clients use ws:// and http://)"
        )
    return ""


def _os_error_text(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"
