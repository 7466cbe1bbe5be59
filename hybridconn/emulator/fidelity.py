"""How closely (and how pessimistically) the emulator imitates the real service.

Where Microsoft's code, tests or issues show what Azure Relay does, the
``default`` profile does the same. Where the evidence is missing or conflicts,
:class:`Fidelity` offers each plausible behaviour, and the ``pessimistic``
profile picks the one hardest on a client, so the library can be tested under
both readings (``HYBRIDCONN_EMULATOR_PROFILE=pessimistic`` for the pytest
plugin's fixture and ``hybridconn emulator --profile``).

The evidence behind each default:

* ``on_ping="answer"``: jbjordan/relay-hybridconnection-python pings every
  20-30 s and works against today's service; ``"close"`` is the 2019 report
  (azure-relay-dotnet #103) of the service closing the control channel on a Ping.
* ``service_pong_interval=210``: the same report saw the service send a Pong
  every 210 s.
* ``idle_timeout=250``: azure-relay #33 measured a silent listener dropped
  after 4:10-4:15 (a load balancer's idle timeout: no close, no RST seen by the
  listener); 250 s is the low end of those measurements.
* ``restart_interval=None``: the service closes control channels about every
  24 h with 1011 ``NameRenewalFailed`` (relay-exceptions article); tests trigger
  it on demand (:meth:`~.server.RelayEmulator.restart_control_channels`) or set
  a short interval.
* ``no_listener_status=502`` / ``no_listener_connect_status=404``: the article
  says 502 (its table "503"); Azure's WebSocket answer is ``404 There are no
  listeners connected for the endpoint`` (seen in Arc and AKS logs). Unknown for
  HTTP: both offered; the client raises ``ListenerUnavailableError`` for each.
* ``request_host="strip"``: the article lists ``Host`` among the headers the
  service strips; Microsoft's own example and samples suggest it is forwarded.
* ``case_sensitive_names=False``: Azure resource names are case-insensitive;
  unknown for the data plane. Routing and token audiences always agree.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

__all__ = ["Fidelity", "PROFILES", "PROFILE_VARIABLE", "profile", "from_environment", "as_fidelity"]

#: The environment variable that picks a profile for the pytest plugin's fixture.
PROFILE_VARIABLE = "HYBRIDCONN_EMULATOR_PROFILE"

#: The reason the service gives when it restarts a listener's control channel.
NAME_RENEWAL_FAILED = "NameRenewalFailed: the listener must reconnect"


@dataclass(frozen=True)
class Fidelity:
    """Service behaviours the emulator imitates (each the service's where known).

    :ivar on_ping: ``"answer"`` a listener's WebSocket Ping on the control channel with a
        Pong, or ``"close"`` the channel (1008) as azure-relay-dotnet #103 reports.
    :ivar service_pong_interval: seconds between the unsolicited Pongs the service sends
        on every control channel (None: none).
    :ivar idle_timeout: seconds a listener-side socket (control channel, rendezvous,
        accepted WebSocket) may carry nothing at all, in either direction, before it is
        dropped silently (no close frame); None never drops.
    :ivar restart_interval: seconds after which the service closes each control channel
        with 1011 ``NameRenewalFailed`` (None: only on demand).
    :ivar rendezvous_host: the host name put in accept and request addresses (the
        listener's port kept) instead of the one the listener connected to, as Azure
        sends a gateway's own name (``g0-prod-...``); a listener must use the address
        as given. None: the listener's own ``Host``.
    :ivar no_listener_status: the HTTP status of a relayed request no listener can take
        (502 or 503).
    :ivar no_listener_connect_status: the status of a WebSocket connect no listener can
        take (404 or 502), always with the text "There are no listeners connected for
        the endpoint".
    :ivar request_host: ``"strip"`` the sender's ``Host`` from ``requestHeaders`` (the
        article) or ``"forward"`` it.
    :ivar case_sensitive_names: match hybrid connection names (routing and token
        audiences alike) case-sensitively; default not, as Azure resource names.
    """

    on_ping: str = "answer"
    service_pong_interval: Optional[float] = 210.0
    idle_timeout: Optional[float] = 250.0
    restart_interval: Optional[float] = None
    rendezvous_host: Optional[str] = None
    no_listener_status: int = 502
    no_listener_connect_status: int = 404
    request_host: str = "strip"
    case_sensitive_names: bool = False

    def __post_init__(self) -> None:
        if self.on_ping not in ("answer", "close"):
            raise ValueError("on_ping must be 'answer' or 'close'")
        for name in ("service_pong_interval", "idle_timeout", "restart_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None)")
        if self.no_listener_status not in (502, 503):
            raise ValueError("no_listener_status must be 502 or 503")
        if self.no_listener_connect_status not in (404, 502):
            raise ValueError("no_listener_connect_status must be 404 or 502")
        if self.request_host not in ("strip", "forward"):
            raise ValueError("request_host must be 'strip' or 'forward'")
        if self.rendezvous_host is not None and not self.rendezvous_host.strip():
            raise ValueError("rendezvous_host must be a host name (or None)")

    def replace(self, **changes: Any) -> "Fidelity":
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


PROFILES: Dict[str, Fidelity] = {
    "default": Fidelity(),
    # Every unknown read the hard way, every known timer shortened so a test run meets it.
    "pessimistic": Fidelity(on_ping="close", service_pong_interval=3.0, idle_timeout=8.0, restart_interval=6.0,
                            no_listener_status=503, request_host="forward", case_sensitive_names=True),
}


def profile(name: str) -> Fidelity:
    """The named profile (``ValueError`` for an unknown name)."""
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown emulator profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def from_environment() -> Fidelity:
    """The profile named by :data:`PROFILE_VARIABLE` (``default`` when unset)."""
    return profile(os.environ.get(PROFILE_VARIABLE) or "default")


def as_fidelity(value: Union[None, str, Fidelity]) -> Fidelity:
    """A :class:`Fidelity` from None (the default profile), a profile name or a Fidelity."""
    if value is None:
        return PROFILES["default"]
    if isinstance(value, str):
        return profile(value)
    if isinstance(value, Fidelity):
        return value
    raise TypeError("fidelity must be a profile name or a Fidelity")
