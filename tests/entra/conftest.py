"""Fixtures for the Microsoft Entra ID tests: an emulator with role assignments, the development
identity endpoint for azure-identity's own credentials, and listeners/clients that always close.

Principals (the tokens' ``oid``) and their roles on the emulator:

============== ====================== =================
owner-app      Azure Relay Owner      the namespace
listener-app   Azure Relay Listener   hc1
sender-app     Azure Relay Sender     hc1
ns-listener    Azure Relay Listener   the namespace
nobody         (none)
============== ====================== =================

The identity endpoint signs in ``system-mi`` (system-assigned managed identity, owner),
``uai-listener`` (user-assigned, Listener on hc1), ``secret-app`` (client secret, owner)
and ``aks-app`` (workload identity, owner).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List

import pytest

from hybridconn import HybridConnectionClient, HybridConnectionListener
from hybridconn.emulator import DevCredential, RelayEmulator
from hybridconn.emulator.identity import DevIdentityEndpoint

#: The client secret of ``secret-app`` on the identity endpoint (a test value, made up).
CLIENT_SECRET = "Xq7~client-secret-for-tests-only"

ROLES = [
    ("owner-app", "Azure Relay Owner"),
    ("listener-app", "Azure Relay Listener", "hc1"),
    ("sender-app", "Azure Relay Sender", "hc1"),
    ("ns-listener", "Listener"),
    ("system-mi", "Owner"),
    ("uai-listener", "Listener", "hc1"),
    ("secret-app", "Owner"),
    ("aks-app", "Owner"),
]


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    return {"hybrid_connections": ["hc1", "hc2"], "role_assignments": list(ROLES)}


@pytest.fixture
def entra_cs(relay: RelayEmulator) -> Callable[[str], str]:
    """``entra_cs("hc1")``: a connection string without key fields."""
    return lambda path="hc1": relay.connection_string(path, entra=True)


@pytest.fixture
def make_listener(relay: RelayEmulator) -> Iterator[Callable[..., HybridConnectionListener]]:
    """Listeners from an Entra connection string (``credential=`` etc. pass through), closed at teardown."""
    made: List[HybridConnectionListener] = []

    def make(
        path: str = "hc1", open: bool = True, connection_string: str = "", **options: Any
    ) -> HybridConnectionListener:
        listener = HybridConnectionListener.from_connection_string(
            connection_string or relay.connection_string(path, entra=True), **options)
        made.append(listener)
        if open:
            listener.open(timeout=15)
        return listener

    yield make
    for listener in made:
        listener.close(timeout=10)


@pytest.fixture
def make_client(relay: RelayEmulator) -> Iterator[Callable[..., HybridConnectionClient]]:
    """Clients from an Entra connection string, closed at teardown."""
    made: List[HybridConnectionClient] = []

    def make(path: str = "hc1", **options: Any) -> HybridConnectionClient:
        client = HybridConnectionClient.from_connection_string(relay.connection_string(path, entra=True), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def dev() -> Callable[..., DevCredential]:
    """``dev("listener-app", lifetime=10)``: a DevCredential."""
    return DevCredential


@pytest.fixture
def identity() -> Iterator[DevIdentityEndpoint]:
    """The development identity endpoint (managed identity over HTTP, OAuth over TLS), stopped after the test."""
    endpoint = DevIdentityEndpoint(
        client_secrets={"secret-app": CLIENT_SECRET},
        federated_clients=["aks-app"],
        user_assigned=["uai-listener"],
        system_principal_id="system-mi",
    )
    with endpoint:
        yield endpoint


@pytest.fixture
def app_service(identity: DevIdentityEndpoint, monkeypatch: pytest.MonkeyPatch) -> DevIdentityEndpoint:
    """The environment of an App Service app with a managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER."""
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_AUTHORITY_HOST", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "HYBRIDCONN_AUTH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in identity.environment.items():
        monkeypatch.setenv(name, value)
    return identity
