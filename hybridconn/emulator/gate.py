"""The checks in front of every endpoint: which hybrid connection, and may this token use it.

Each check returns what it found or a :class:`~.status.Refusal` (with a
tracking id) for the endpoint to return.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from .access import Denied, TokenSource, find_token
from .entities import Entity
from .http_conn import Incoming
from .status import Refusal, describe

__all__ = ["Admitted", "admit", "resolve_entity", "authorize", "audiences", "forwarded_headers", "optional_int"]

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
    found = incoming.ctx.registry.resolve(incoming.target.path)
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
