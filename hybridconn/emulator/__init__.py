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

Microsoft Entra ID: the emulator also accepts tokens of its development issuer
(:class:`DevCredential` mints them; ``role_assignments=`` says who may do what;
``local_auth=False`` refuses SAS). :class:`DevIdentityEndpoint` serves those tokens to
azure-identity's own credentials (managed identity, client secret, workload identity).
"""

from __future__ import annotations

from .access import ALL_RIGHTS, DEFAULT_KEY, DEFAULT_KEY_NAME
from .credential import DevCredential
from .entra import DEV_ISSUER, DEV_TENANT_ID, mint_token
from .identity import DevIdentityEndpoint
from .limits import ClientLimits
from .roles import DEV_PRINCIPAL_ID, LISTENER, OWNER, SENDER, RoleAssignment
from .server import RelayEmulator

__all__ = [
    "RelayEmulator", "DEFAULT_KEY_NAME", "DEFAULT_KEY", "ALL_RIGHTS",
    "DevCredential", "DevIdentityEndpoint", "RoleAssignment", "OWNER", "LISTENER", "SENDER",
    "DEV_PRINCIPAL_ID", "DEV_TENANT_ID", "DEV_ISSUER", "mint_token", "ClientLimits",
]
