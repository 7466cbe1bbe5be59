"""Microsoft Entra ID for the emulator: a development token issuer, and the check of its tokens.

The issuer signs Entra ID-shaped access tokens (JWTs with ``aud``, ``iss``,
``tid``, ``oid``, ``exp``...) with a fixed ES256 key. Like the development SAS key,
the key and the issuer are **not secrets**: they are documented here so that tests in
any process mint tokens this emulator accepts, and Azure never trusts them.

The check mirrors the service: a token from an issuer it does not trust, with a bad
signature, for another audience, not yet valid or expired is refused with 401; a valid
token whose principal has no role granting the right (see :mod:`.roles`) with 403.

Signing and verification use PyJWT with ``cryptography`` (``pip install
"hybridconn[emulator]"``), imported only when an Entra ID token is minted or checked:
the SAS path needs neither.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from .._entra import RELAY_RESOURCE, bare_jwt
from .._sas import normalize_audience
from ..exceptions import ConfigurationError
from .access import Denied, Granted, Verdict
from .roles import DEV_PRINCIPAL_ID, RoleAssignments

__all__ = [
    "DEV_TENANT_ID",
    "DEV_ISSUER",
    "DEV_KEY_ID",
    "DEV_KEY_PHRASE",
    "RELAY_AUDIENCES",
    "EMULATOR_EXTRA_HINT",
    "dev_signing_key",
    "mint_token",
    "EntraVerifier",
]

log: logging.Logger = logging.getLogger(__name__)

#: The development tenant. Not a real tenant.
DEV_TENANT_ID = "00000000-0000-4000-8000-00000000de70"
#: The development issuer (shaped like Entra ID's v1 ``https://sts.windows.net/{tenant}/``;
#: ``.invalid`` is a name that never resolves).
DEV_ISSUER = f"https://sts.hybridconn.invalid/{DEV_TENANT_ID}/"
#: The ``kid`` of the development signing key.
DEV_KEY_ID = "hybridconn-dev-es256-1"
#: The development key is the P-256 key whose private value is SHA-256 of this phrase. Not a secret.
DEV_KEY_PHRASE = b"hybridconn relay emulator: Entra ID development signing key (public, not a secret)"
#: The ``aud`` values Azure Relay accepts: its resource, with or without the trailing slash
#: (scope ``https://relay.azure.net//.default`` as .NET and Java ask, or ``.../.default`` as azbridge does).
RELAY_AUDIENCES: Tuple[str, ...] = (RELAY_RESOURCE, RELAY_RESOURCE.rstrip("/"))
EMULATOR_EXTRA_HINT = 'pip install "hybridconn[emulator]"'

_ALGORITHM = "ES256"
_key_lock = threading.Lock()
_dev_key: Any = None


def _jwt() -> Any:
    try:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401 - PyJWT's ES256 needs it
    except ImportError as exc:
        raise ConfigurationError(
            f"Entra ID tokens in the emulator need PyJWT and cryptography: {EMULATOR_EXTRA_HINT}"
        ) from exc
    return jwt


def dev_signing_key() -> Any:
    """The development issuer's private key (a ``cryptography`` EC key), derived from :data:`DEV_KEY_PHRASE`."""
    global _dev_key
    with _key_lock:
        if _dev_key is None:
            _jwt()
            from cryptography.hazmat.primitives.asymmetric import ec

            order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 group order
            value = int.from_bytes(hashlib.sha256(DEV_KEY_PHRASE).digest(), "big") % (order - 1) + 1
            _dev_key = ec.derive_private_key(value, ec.SECP256R1())
        return _dev_key


def mint_token(
    principal_id: str = DEV_PRINCIPAL_ID,
    *,
    lifetime: float = 3600,
    audience: str = RELAY_RESOURCE,
    issuer: str = DEV_ISSUER,
    tenant_id: str = DEV_TENANT_ID,
    not_before: Optional[float] = None,
    signing_key: Any = None,
    claims: Optional[Mapping[str, Any]] = None,
    now: Optional[float] = None,
) -> Tuple[str, int]:
    """``(jwt, expires_on)``: an access token for ``principal_id`` valid ``lifetime`` seconds.

    The defaults make a token this emulator accepts; change one to make one it refuses
    (``audience=``, ``issuer=``, a negative ``lifetime``, ``signing_key=`` another EC P-256 key).
    """
    jwt = _jwt()
    issued = int(time.time() if now is None else now)
    expires_on = int(issued + lifetime)
    payload: Dict[str, Any] = {
        "aud": audience,
        "iss": issuer,
        "iat": issued,
        "nbf": int(issued if not_before is None else not_before),
        "exp": expires_on,
        "oid": principal_id,
        "sub": principal_id,
        "tid": tenant_id,
        "appid": principal_id,
        "idtyp": "app",
        "ver": "1.0",
        "uti": uuid.uuid4().hex,  # makes each token distinct, as Entra ID's are
    }
    payload.update(claims or {})
    key = signing_key if signing_key is not None else dev_signing_key()
    token = jwt.encode(payload, key, algorithm=_ALGORITHM, headers={"kid": DEV_KEY_ID, "typ": "JWT"})
    return token, expires_on


class EntraVerifier:
    """Checks Entra ID tokens for the emulator's :class:`~.access.KeyRing`: issuer, signature,
    audience, lifetime, then the principal's roles on the hybrid connection.

    :param roles: the role assignments consulted for each check.
    :param issuers: ``{issuer: public key}`` trusted; by default only :data:`DEV_ISSUER`.
    """

    def __init__(self, roles: RoleAssignments, issuers: Optional[Mapping[str, Any]] = None) -> None:
        self.roles = roles
        self._issuers = dict(issuers) if issuers is not None else None
        self._warned = False

    def check(self, token: str, audiences: Iterable[str], right: str, now: Optional[float] = None) -> Verdict:
        """Whether ``token`` grants ``right`` on the hybrid connection ``audiences`` name."""
        entity = _entity_of(audiences)
        try:
            claims = self._verified_claims(bare_jwt(token), time.time() if now is None else now)
        except ConfigurationError as exc:
            if not self._warned:
                self._warned = True
                log.warning("refusing an Entra ID token: %s", exc)
            return Denied(401, f"This emulator cannot verify Entra ID tokens ({EMULATOR_EXTRA_HINT})")
        except _Refused as refused:
            return Denied(401, f"Invalid Entra ID token: {refused}")
        principal = str(claims.get("oid") or claims.get("sub") or "")
        if right in self.roles.rights(principal, entity):
            return Granted(f"Entra ID principal {principal}")
        held = self.roles.roles_of(principal, entity)
        has = f"holds {', '.join(held)}" if held else "holds no Azure Relay role"
        return Denied(403, f"Unauthorized access. '{right}' claim(s) are required to perform this operation: "
                           f"principal {principal!r} {has} on {entity!r}")

    def _trusted_key(self, issuer: object) -> Any:
        if self._issuers is None:
            return dev_signing_key().public_key() if issuer == DEV_ISSUER else None
        return self._issuers.get(issuer) if isinstance(issuer, str) else None

    def _verified_claims(self, token: str, now: float) -> Dict[str, Any]:
        jwt = _jwt()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _Refused("malformed token") from None
        key = self._trusted_key(unverified.get("iss"))
        if key is None:
            raise _Refused(f"the issuer {str(unverified.get('iss'))[:100]!r} is not trusted")
        try:
            claims: Dict[str, Any] = jwt.decode(
                token, key, algorithms=[_ALGORITHM], audience=list(RELAY_AUDIENCES),
                options={"require": ["exp", "aud", "iss"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise _Refused(f"the audience {str(unverified.get('aud'))[:100]!r} is not {RELAY_RESOURCE}") from None
        except jwt.InvalidSignatureError:
            raise _Refused("invalid signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _Refused(f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise _Refused(f"malformed token ({type(exc).__name__})") from None
        if float(claims["exp"]) <= now:
            raise _Refused("the token has expired")
        if "nbf" in claims and float(claims["nbf"]) > now:
            raise _Refused("the token is not valid yet")
        return claims


class _Refused(Exception):
    """Why a token is invalid (401)."""


def _entity_of(audiences: Iterable[str]) -> str:
    for audience in audiences:
        try:
            return normalize_audience(audience)[1].strip("/")
        except ValueError:
            continue
    return ""
