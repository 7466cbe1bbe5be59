"""The checks in front of every endpoint: which hybrid connection, and may this token use it."""

from __future__ import annotations

import functools
import logging
from typing import Dict, List, Optional, Tuple

from .access import TokenSource, find_token
from .context import Target
from .registry import Entity
from .status import Refusal, describe

__all__ = ["resolve_entity", "authorize", "audiences"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def resolve_entity(conn: "object", target: Target) -> Tuple[Entity, str]:
    """(entity, suffix) or a 404 refusal."""
    ctx = conn.ctx  # type: ignore[attr-defined]
    found = ctx.registry.resolve(target.path)
    if found is None:
        name = target.path.split("/", 1)[0]
        raise Refusal(404, describe(f"Hybrid connection {name!r} does not exist", conn.tracker(name)))  # type: ignore[attr-defined]
    return found


def audiences(conn: "object", headers: Dict[str, str], entity: Entity) -> List[str]:
    """Resources a token may be signed for: the host the client addressed, or ours."""
    ctx = conn.ctx  # type: ignore[attr-defined]
    return list(_audiences(headers.get("host", "").strip(), ctx.authority, entity.name))


@functools.lru_cache(maxsize=256)
def _audiences(host_header: str, authority: str, entity_name: str) -> Tuple[str, ...]:
    # Cached: every relayed request asks, and a sender repeats the same Host header.
    hosts: List[str] = []
    if host_header:
        hosts.append(host_header)
    hosts.append(authority)
    name, _, port = authority.rpartition(":")
    if name in _LOOPBACK:
        hosts.extend(f"{alias}:{port}" for alias in _LOOPBACK if alias != name)
    seen: List[str] = []
    for host in hosts:
        audience = f"http://{host}/{entity_name}"
        if audience not in seen:
            seen.append(audience)
    return tuple(seen)


def authorize(
    conn: "object", target: Target, headers: Dict[str, str], entity: Entity, right: str, anonymous_ok: bool = False
) -> TokenSource:
    """Check the request's token for ``right``; 401/403 refusals carry a tracking id.

    With ``anonymous_ok`` (a hybrid connection that does not require client
    authorization) no token is evaluated, and ``Authorization`` is left alone.
    """
    ctx = conn.ctx  # type: ignore[attr-defined]
    source = find_token(list(target.pairs), headers, allow_authorization=not anonymous_ok)
    if anonymous_ok:
        return TokenSource(None, None) if source.where == "authorization-header" else source
    try:
        ctx.keyring.check(source.token, audiences(conn, headers, entity), right)
    except PermissionError as exc:
        status, text = exc.args
        log.info("refused %s on %s from %s: %d %s", right.lower(), entity.name, conn.peer[0], status, text)  # type: ignore[attr-defined]
        raise Refusal(status, describe(text, conn.tracker(entity.name))) from None  # type: ignore[attr-defined]
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
