"""hybridconn: a Python client for Azure Relay Hybrid Connections, with a local relay emulator.

Synchronous and thread-based: a :class:`HybridConnectionListener` serves HTTP
requests and WebSocket connections from a pool of handler threads, and a
:class:`HybridConnectionClient` sends through the relay with plain blocking
calls. :mod:`hybridconn.emulator` runs the service side locally.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from .auth import (
    CallableTokenProvider,
    ConnectionString,
    EntraTokenProvider,
    SasAuth,
    SharedAccessKeyTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    generate_sas_token,
    parse_sas_token,
    verify_sas_token,
)
from .connection import HybridConnection
from .exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HandshakeError,
    HybridConnectionError,
    ListenerUnavailableError,
    NoListenerConnectedError,
    ProtocolError,
    RelayConnectionError,
    RelayTimeoutError,
)
from .relayed import RelayedRequest, RelayedResponse, ResponseRecord

__version__ = "0.1.0"

# Heavier modules load on first use, so `import hybridconn` stays cheap.
_LAZY = {
    "HybridConnectionListener": "hybridconn.listener",
    "ConnectionRequest": "hybridconn.listener",
    "HybridConnectionClient": "hybridconn.client",
    "serve_wsgi": "hybridconn.wsgi",
    "RelayEmulator": "hybridconn.emulator",
}

if TYPE_CHECKING:  # pragma: no cover
    from .client import HybridConnectionClient
    from .listener import ConnectionRequest
    from .emulator import RelayEmulator
    from .listener import HybridConnectionListener
    from .wsgi import serve_wsgi


def __dir__() -> List[str]:
    """The module's names including the lazily loaded ones, for ``dir()``, ``pydoc`` and completion."""
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridconn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "CallableTokenProvider",
    "ConfigurationError",
    "ConnectionClosed",
    "ConnectionRequest",
    "ConnectionRejectedError",
    "ConnectionString",
    "EndpointNotFoundError",
    "EntraTokenProvider",
    "HandshakeError",
    "HybridConnection",
    "HybridConnectionClient",
    "HybridConnectionError",
    "HybridConnectionListener",
    "ListenerUnavailableError",
    "NoListenerConnectedError",
    "ProtocolError",
    "RelayConnectionError",
    "RelayEmulator",
    "RelayTimeoutError",
    "RelayedRequest",
    "RelayedResponse",
    "ResponseRecord",
    "SasAuth",
    "SharedAccessKeyTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "generate_sas_token",
    "parse_sas_token",
    "serve_wsgi",
    "verify_sas_token",
    "__version__",
]
