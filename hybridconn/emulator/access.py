"""Authorization rules: which keys exist, what rights they grant, where tokens come from.

The service takes a token from the ``sb-hc-token`` query parameter, the
``ServiceBusAuthorization`` header or - only when neither is present - the
``Authorization`` header. The first two are always removed before anything
is forwarded; ``Authorization`` is removed only when it was evaluated.

A token that is a JWT (Microsoft Entra ID, with or without ``Bearer``) goes to the
key ring's ``entra`` checker (:class:`~.entra.EntraVerifier`); with ``local_auth``
off, SAS tokens are refused as on a namespace whose local authentication is disabled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Protocol, Tuple, Union

from .._entra import bare_jwt, jwt_claims, looks_like_jwt
from ..auth import parse_sas_token, verify_sas_token
from ..exceptions import AuthenticationError

__all__ = [
    "DEFAULT_KEY_NAME",
    "DEFAULT_KEY",
    "ALL_RIGHTS",
    "KeyRing",
    "Granted",
    "Denied",
    "Verdict",
    "TokenSource",
    "find_token",
]

#: The rule every emulator has unless told otherwise (as Azurite and the Service Bus emulator do).
DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
#: The fixed, documented development key of :data:`DEFAULT_KEY_NAME`. Not a secret: never use it in Azure.
DEFAULT_KEY = "SHlicmlkQ29ubkVtdWxhdG9yRGV2ZWxvcG1lbnRLZXk="
ALL_RIGHTS: FrozenSet[str] = frozenset({"Listen", "Send", "Manage"})

KeySpec = Union[str, Tuple[str, Iterable[str]]]

#: Verified tokens remembered per key ring before the memory is dropped.
_VERIFIED_CACHE_SIZE = 1024


@dataclass(frozen=True)
class TokenSource:
    """Where a request's token was found (``query``, ``servicebus-header``, ``authorization-header``)."""

    token: Optional[str]
    where: Optional[str]


@dataclass(frozen=True)
class Granted:
    """The token is valid for the resource and right; ``key_name`` is the rule that signed it."""

    key_name: str


@dataclass(frozen=True)
class Denied:
    """The token is refused: ``status`` 401 (missing, invalid, expired) or 403 (lacks the right)."""

    status: int
    reason: str


Verdict = Union[Granted, Denied]


class TokenChecker(Protocol):
    """Checks tokens of another kind (Entra ID) for a :class:`KeyRing`."""

    def check(self, token: str, audiences: Iterable[str], right: str, now: Optional[float] = None) -> Verdict:
        ...  # pragma: no cover - a protocol


class KeyRing:
    """Named keys and their rights (Listen, Send, Manage; Manage implies the other two).

    :param entra: checks JWTs (Entra ID tokens); without one they are refused.
    :param local_auth: False refuses every SAS token (Entra ID only).
    """

    def __init__(self, keys: Optional[Mapping[str, KeySpec]] = None, entra: Optional[TokenChecker] = None,
                 local_auth: bool = True) -> None:
        self.entra = entra
        self.local_auth = local_auth
        if keys is None:
            keys = {DEFAULT_KEY_NAME: (DEFAULT_KEY, ALL_RIGHTS)}
        self._keys: Dict[str, str] = {}
        self._rights: Dict[str, FrozenSet[str]] = {}
        for name, spec in keys.items():
            if isinstance(spec, str):
                key, rights = spec, ALL_RIGHTS
            else:
                key, rights = spec[0], frozenset(spec[1])
            rights = frozenset(r.capitalize() for r in rights)
            if "Manage" in rights:
                rights = rights | ALL_RIGHTS
            self._keys[name] = key
            self._rights[name] = rights
        if not self._keys:
            raise ValueError("the emulator needs at least one key")
        # Tokens already verified: (token, audiences, right) -> (verdict, expiry). A sender
        # repeats one token on every request; an HMAC per request was ~9 % of the relay's CPU.
        # Keys never change after construction, so only the expiry needs checking again.
        self._verified: Dict[Tuple[str, Tuple[str, ...], str], Tuple[Granted, float]] = {}

    @property
    def names(self) -> List[str]:
        return list(self._keys)

    def key(self, name: Optional[str] = None) -> Tuple[str, str]:
        """(name, key) of ``name``, or of the first rule with all rights (else the first rule)."""
        if name is not None:
            return name, self._keys[name]
        for candidate, rights in self._rights.items():
            if rights >= ALL_RIGHTS:
                return candidate, self._keys[candidate]
        first = next(iter(self._keys))
        return first, self._keys[first]

    def check(self, token: Optional[str], audiences: Iterable[str], right: str, now: Optional[float] = None) -> Verdict:
        """Whether ``token`` grants ``right`` on one of ``audiences``."""
        if not token:
            return Denied(401, f"The request has no token; a token with the {right} right is required")
        if looks_like_jwt(token):
            if self.entra is None:
                return Denied(401, "Invalid authorization token: this namespace does not accept Entra ID tokens")
            return self.entra.check(token, audiences, right, now)
        if not self.local_auth:
            return Denied(
                401, "Local authentication (SAS) is disabled for this namespace: use a Microsoft Entra ID token"
            )
        now = time.time() if now is None else now
        cache_key = (token, tuple(audiences), right)
        known = self._verified.get(cache_key)
        if known is not None and known[1] > now:
            return known[0]
        verdict = self._verify(token, cache_key[1], right, now)
        if isinstance(verdict, Granted):
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()  # bounded; a real sender reuses a handful of tokens
            self._verified[cache_key] = (verdict, float(parse_sas_token(token).expiry))
        return verdict

    def _verify(self, token: str, audiences: Iterable[str], right: str, now: float) -> Verdict:
        last: Optional[AuthenticationError] = None
        for audience in audiences:
            try:
                parsed = verify_sas_token(token, self._keys, audience, now=now)
            except AuthenticationError as exc:
                last = exc
                if exc.reason != "token audience does not match the resource":
                    break
                continue
            if right not in self._rights.get(parsed.key_name, frozenset()):
                return Denied(
                    403, f"The token's rule {parsed.key_name!r} does not have the {right} right for this path"
                )
            return Granted(parsed.key_name)
        reason = last.reason if last is not None else "invalid token"
        return Denied(401, f"Invalid authorization token: {reason}")

    @staticmethod
    def expiry(token: str) -> float:
        """Unix time at which a (verified) token expires: its ``se``, or a JWT's ``exp``."""
        if looks_like_jwt(token):
            return float(jwt_claims(bare_jwt(token)).get("exp", 0))
        return float(parse_sas_token(token).expiry)


def find_token(
    query_pairs: List[Tuple[str, str]], headers: Mapping[str, str], allow_authorization: bool = True
) -> TokenSource:
    """The token a request carries, by the service's precedence. ``headers`` has lower-case names."""
    for name, value in query_pairs:
        if name.lower() == "sb-hc-token" and value:
            return TokenSource(value, "query")  # already decoded by parse_qsl
    if headers.get("servicebusauthorization"):
        return TokenSource(headers["servicebusauthorization"], "servicebus-header")
    if allow_authorization and headers.get("authorization"):
        return TokenSource(headers["authorization"], "authorization-header")
    return TokenSource(None, None)
