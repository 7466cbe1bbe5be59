"""pytest plugin: test your own listeners and senders offline against a relay emulator.

Installing hybridconn registers this plugin (entry point ``pytest11``), so the
fixtures below are available in any project that has hybridconn installed::

    import hybridconn

    def test_my_listener_answers(relay_emulator):
        cs = relay_emulator.connection_string("hc1")
        listener = hybridconn.HybridConnectionListener.from_connection_string(cs)
        listener.on_request(lambda req: hybridconn.RelayedResponse(body=b"pong"))
        with listener:
            listener.open(timeout=10)
            client = hybridconn.HybridConnectionClient.from_connection_string(cs)
            assert client.request("GET", "/ping", timeout=10).text == "pong"

Fixtures (all function-scoped: every test gets a fresh relay on a free port):

``relay_emulator``
    A running :class:`~hybridconn.emulator.RelayEmulator` on 127.0.0.1, stopped
    after the test. It has the hybrid connections named by
    ``relay_emulator_options``; ``relay_emulator.connection_string(name)`` gives
    a connection string with ``EntityPath=name`` that both sides can use.
``relay_connection_string``
    ``relay_emulator.connection_string("hc1")``: the shortest way in when one
    hybrid connection is enough.
``relay_credential``
    A :class:`~hybridconn.emulator.DevCredential`: an azure-core ``TokenCredential``
    whose Microsoft Entra ID tokens the emulator accepts (its principal owns the
    namespace unless ``relay_emulator_options`` sets ``role_assignments``). Use it as
    ``credential=`` with ``relay_emulator.connection_string(name, entra=True)``; it needs
    ``pip install "hybridconn[emulator]"``.
``relay_emulator_options``
    The keyword arguments the emulator is built with; by default
    ``{"hybrid_connections": ["hc1"]}``. Override it in your ``conftest.py`` to
    add hybrid connections or change other emulator options::

        @pytest.fixture
        def relay_emulator_options():
            return {"hybrid_connections": ["orders", "invoices"]}

``HYBRIDCONN_EMULATOR_PROFILE=pessimistic`` runs ``relay_emulator`` with the
emulator's pessimistic :mod:`~hybridconn.emulator.fidelity` profile (close the
control channel on a Ping, idle sockets dropped after 8 s, control channels
restarted every 6 s...) unless ``relay_emulator_options`` sets ``fidelity``.

These fixtures are always local: they never read ``HYBRIDCONN_CONNECTION_STRING``
and never touch Azure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .emulator import DevCredential, RelayEmulator

#: The hybrid connection the fixtures create when ``relay_emulator_options`` is not overridden.
DEFAULT_HYBRID_CONNECTION = "hc1"


@pytest.fixture
def relay_emulator_options() -> Dict[str, Any]:
    """Keyword arguments for :class:`~hybridconn.emulator.RelayEmulator`; override to customise."""
    return {"hybrid_connections": [DEFAULT_HYBRID_CONNECTION]}


@pytest.fixture
def relay_emulator(relay_emulator_options: Dict[str, Any]) -> Iterator["RelayEmulator"]:
    """A running relay emulator on 127.0.0.1 (any free port), stopped after the test."""
    from .emulator import RelayEmulator
    from .emulator.fidelity import from_environment

    options = dict(relay_emulator_options)
    options.setdefault("hybrid_connections", [DEFAULT_HYBRID_CONNECTION])
    if options.get("fidelity") is None:
        options["fidelity"] = from_environment()
    with RelayEmulator(**options) as relay:
        yield relay


@pytest.fixture
def relay_connection_string(relay_emulator: "RelayEmulator", relay_emulator_options: Dict[str, Any]) -> str:
    """A connection string (with EntityPath) for the emulator's first hybrid connection."""
    names = list(relay_emulator_options.get("hybrid_connections") or [DEFAULT_HYBRID_CONNECTION])
    return relay_emulator.connection_string(names[0])


@pytest.fixture
def relay_credential(relay_emulator: "RelayEmulator") -> "DevCredential":
    """A credential minting Entra ID tokens the emulator accepts (the development principal's)."""
    return relay_emulator.credential()
