"""TCP port forwarding over a hybrid connection, wire-compatible with azbridge.

:class:`LocalForwarder` is the sender side (azbridge ``-L``): it accepts TCP
connections and opens one relayed WebSocket per connection.
:class:`RemoteForwarder` is the listener side (azbridge ``-T``/``-R``): it
accepts relayed connections and connects each to a TCP target. Both speak
azbridge's v1.0 preamble (:mod:`hybridconn.forward.preamble`), so either end
can be azbridge.

Data moves as binary messages of 1..64 KiB (never an empty one: azbridge reads
that as end of stream); EOF from a TCP socket is sent as a WebSocket close
with code 1000. What that means for TCP half-close is explained in
:mod:`hybridconn.forward.pump`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["LocalForwarder", "RemoteForwarder"]

_LAZY = {
    "LocalForwarder": "hybridconn.forward.local",
    "RemoteForwarder": "hybridconn.forward.remote",
}

if TYPE_CHECKING:  # pragma: no cover
    from .local import LocalForwarder
    from .remote import RemoteForwarder


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridconn.forward' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
