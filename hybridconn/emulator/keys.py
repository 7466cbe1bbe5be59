"""Rendezvous keys: the unguessable part of the accept and request addresses the emulator mints.

An ``accept`` or ``request`` message goes to one listener over its authenticated
control channel; the address in it is the only credential the listener then
presents (accept and request sockets carry no token). So the address must hold
something nobody else can know: the sender chooses ``sb-hc-id`` and request ids
show up in logs, so neither may be what lets a socket in.

The address's ``sb-hc-id`` is ``{public id}_{secret}``: the public id (the
message's ``id``, as in Azure's ``GUID_G0_G1``) finds the pending work, the
secret (128 random bits, hex so it never holds the ``_`` that separates it) is
compared in constant time. The message's ``id`` never carries the secret, so a
listener logging its connection id leaks nothing. Clients use the address as
given and never parse it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Optional, Tuple

__all__ = ["mint_secret", "keyed_id", "split_keyed_id", "secret_matches"]

_SECRET_BYTES = 16


def mint_secret() -> str:
    """A fresh secret for one address: 32 hex characters."""
    return secrets.token_hex(_SECRET_BYTES)


def keyed_id(public_id: str, secret: str) -> str:
    """The ``sb-hc-id`` value of an address: the public id, then the secret."""
    return f"{public_id}_{secret}"


def split_keyed_id(value: Optional[str]) -> Optional[Tuple[str, str]]:
    """``(public id, secret)`` from an address's ``sb-hc-id``, or None when it holds no secret."""
    if not value or "_" not in value:
        return None
    public_id, secret = value.rsplit("_", 1)
    if not public_id or not secret:
        return None
    return public_id, secret


def secret_matches(expected: str, given: str) -> bool:
    """Constant-time comparison (``given`` may be any text a client sent)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))
