"""A local Azure Relay Hybrid Connections emulator on real sockets.

HTTP/1.1 via h11, WebSocket via wsproto, a thread per connection, one TCP
port for everything, optional TLS. Listeners, senders and HTTP clients talk to
it exactly as they talk to the service::

    from hybridconn.emulator import RelayEmulator

    with RelayEmulator(hybrid_connections=["hc1"]) as relay:
        cs = relay.connection_string("hc1")
        ...

Faults for tests: :meth:`RelayEmulator.drop_control_channels`,
:meth:`~RelayEmulator.refuse_listeners`, :meth:`~RelayEmulator.stall_control_channels`,
:meth:`~RelayEmulator.restart`.
"""

from __future__ import annotations

from .access import ALL_RIGHTS, DEFAULT_KEY, DEFAULT_KEY_NAME
from .server import RelayEmulator

__all__ = ["RelayEmulator", "DEFAULT_KEY_NAME", "DEFAULT_KEY", "ALL_RIGHTS"]
