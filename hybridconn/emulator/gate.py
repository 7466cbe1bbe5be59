"""The checks in front of every endpoint: which hybrid connection, and may this token use it.

Each check returns what it found or a :class:`~.status.Refusal` (with a
tracking id) for the endpoint to return.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple, Union

from .._sas import normalize_audience, parse_sas_token
from ..exceptions import HybridConnectionError
from .access import Denied, TokenSource, find_token
from .entities import Entity, ListenerChannel
from .http_conn import Incoming
from .status import NO_LISTENER_MEETS, NO_LISTENERS, Refusal, describe

__all__ = [
    "Admitted", "admit", "resolve_entity", "authorize", "audiences", "forwarded_headers", "optional_int",
    "listener_filter", "pick_for",
]

#: The sender's headers naming the listeners it will (not) be routed to: comma-separated listener
#: ids (azure-relay-dotnet HybridRequestTests.cs sends each listener's TrackingContext.ActivityId).
ALLOWED_LISTENERS = "microsoft-relay-allowedlisteners"
DISALLOWED_LISTENERS = "microsoft-relay-disallowedlisteners"

log: logging.Logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Admitted:
    """A request that passed the gate: its hybrid connection, the path after it, and its token."""

    entity: Entity
    suffix: str
    source: TokenSource


def admit(incoming: Incoming, right: str) -> Union[Admitted, Refusal]:
    """Resolve the hybrid connection and check the token for ``right`` (``Listen`` or ``Send``).

    A sender needs no token on a hybrid connection that does not require client authorization.
    """
    found = resolve_entity(incoming)
    if isinstance(found, Refusal):
        return found
    entity, suffix = found
    anonymous_ok = right == "Send" and not entity.requires_client_authorization
    source = authorize(incoming, entity, right, anonymous_ok=anonymous_ok)
    if isinstance(source, Refusal):
        return source
    return Admitted(entity, suffix, source)


def resolve_entity(incoming: Incoming) -> Union[Tuple[Entity, str], Refusal]:
    """(entity, suffix) of the request's path, or a 404 refusal."""
    found = incoming.ctx.registry.resolve(incoming.target.path, incoming.ctx.fidelity.case_sensitive_names)
    if found is None:
        name = incoming.target.path.split("/", 1)[0]
        return incoming.refusal(404, "Endpoint does not exist", name)  # the service's text (RunTimeTests.cs)
    return found


def audiences(incoming: Incoming, entity: Entity) -> Tuple[str, ...]:
    """Resources a token may be signed for: this emulator under the names it is configured with.

    Never the request's ``Host`` header: the client controls it, and honouring it would accept a
    token signed for any other namespace whose key happens to be the same.
    """
    return _audiences(incoming.ctx.authority, incoming.ctx.hostnames, entity.name)


@functools.lru_cache(maxsize=256)
def _audiences(authority: str, hostnames: Tuple[str, ...], entity_name: str) -> Tuple[str, ...]:
    # Cached: every relayed request asks.
    hosts: List[str] = [authority]
    name, _, port = authority.rpartition(":")
    if name in _LOOPBACK:
        hosts.extend(f"{alias}:{port}" for alias in _LOOPBACK if alias != name)
    hosts.extend(host if host.rpartition(":")[2].isdigit() and not host.endswith("]") else f"{host}:{port}"
                 for host in hostnames)
    seen: List[str] = []
    for host in hosts:
        audience = f"http://{host}/{entity_name}"
        if audience not in seen:
            seen.append(audience)
    return tuple(seen)


def authorize(
    incoming: Incoming, entity: Entity, right: str, anonymous_ok: bool = False
) -> Union[TokenSource, Refusal]:
    """The request's token, checked for ``right``; or a 401/403 refusal.

    With ``anonymous_ok`` (a hybrid connection that does not require client
    authorization) no token is evaluated, and ``Authorization`` is left alone.
    """
    source = find_token(list(incoming.target.pairs), incoming.headers, allow_authorization=not anonymous_ok)
    if anonymous_ok:
        return TokenSource(None, None) if source.where == "authorization-header" else source
    verdict = incoming.ctx.keyring.check(source.token, audiences(incoming, entity), right)
    if incoming.ctx.fidelity.case_sensitive_names and not isinstance(verdict, Denied) and source.token:
        if not sas_names_exactly(source.token, entity.name):
            verdict = Denied(401, "token audience does not match the resource (names are case-sensitive)")
    if isinstance(verdict, Denied):
        log.info(
            "refused %s on %s from %s: %d %s",
            right.lower(),
            entity.name,
            incoming.conn.peer[0],
            verdict.status,
            verdict.reason,
        )
        return Refusal(verdict.status, describe(verdict.reason, incoming.tracker(entity.name)))
    return source


def forwarded_headers(raw: Dict[str, str], source: TokenSource, drop: Tuple[str, ...] = ()) -> Dict[str, str]:
    """The sender's headers minus the relay's own auth (and ``drop``), original spelling kept."""
    removed = {"servicebusauthorization", *(d.lower() for d in drop)}
    if source.where == "authorization-header":
        removed.add("authorization")
    return {name: value for name, value in raw.items() if name.lower() not in removed}


def optional_int(text: Optional[str]) -> Optional[int]:
    try:
        return int(str(text).strip()) if text is not None else None
    except ValueError:
        return None


def _ids(value: Optional[str]) -> Optional[FrozenSet[str]]:
    if value is None:
        return None
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def listener_filter(incoming: Incoming) -> Optional[Callable[[ListenerChannel], bool]]:
    """The sender's AllowedListeners/DisallowedListeners as a test on a listener, or None (any).

    A listener is named by the ``sb-hc-id`` it connected with (its tracking id, matched
    case-insensitively; Azure-style ``_G..`` suffixes after the first ``_`` are ignored).
    """
    allowed = _ids(incoming.headers.get(ALLOWED_LISTENERS))
    disallowed = _ids(incoming.headers.get(DISALLOWED_LISTENERS))
    if allowed is None and disallowed is None:
        return None

    def qualifies(channel: ListenerChannel) -> bool:
        lowered = channel.listener_id.lower()
        names = {lowered, lowered.split("_", 1)[0]}
        if allowed is not None and not names & allowed:
            return False
        return not (disallowed is not None and names & disallowed)

    return qualifies


def pick_for(incoming: Incoming, entity: Entity, no_listener_status: int) -> Union[ListenerChannel, Refusal]:
    """A listener for this sender (its AllowedListeners/DisallowedListeners applied), or the refusal."""
    only = listener_filter(incoming)
    channel = incoming.ctx.registry.pick_listener(entity, only=only)
    if channel is not None:
        return channel
    if only is not None and incoming.ctx.registry.pick_listener(entity) is not None:
        return incoming.refusal(404, NO_LISTENER_MEETS, entity.name)
    return incoming.refusal(no_listener_status, NO_LISTENERS, entity.name)


def sas_names_exactly(token: str, entity_name: str) -> bool:
    """False when ``token`` is a SAS token whose resource names the hybrid connection in another case.

    The SAS check compares paths case-insensitively (Azure's resource names are); with
    ``Fidelity(case_sensitive_names=True)`` routing is case-exact, and so must the token be.
    Other tokens (Entra ID's name no hybrid connection) pass.
    """
    try:
        path = normalize_audience(parse_sas_token(token).resource)[1].strip("/")
    except (HybridConnectionError, ValueError, KeyError):
        return True
    return path == "" or entity_name == path or entity_name.startswith(path + "/")
