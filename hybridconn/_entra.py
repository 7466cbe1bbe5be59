"""Microsoft Entra ID: the relay's token scope, and azure-identity credentials made on request.

Microsoft's clients ask Entra ID for the scope ``https://relay.azure.net//.default``
(the resource ``https://relay.azure.net/`` plus ``/.default``; .NET
``ManagedIdentityTokenProvider.cs:16``, Java ``AzureIdentityTokenProvider.java:24``) and put
the access token, a JWT, as it is - no ``Bearer`` prefix - where a SAS token would go:
the ``ServiceBusAuthorization`` header of each handshake and the ``token`` of a
``renewToken`` message (.NET ``HybridConnectionListener.cs:749,965-966``).

This module never imports azure-identity unless a credential has to be made here
(``Authentication=Managed Identity``, the CLI's ``--auth``); a credential the
caller made needs nothing but its ``get_token``/``get_token_info`` method.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Dict, Optional, Protocol, Tuple

from .exceptions import ConfigurationError

__all__ = [
    "RELAY_RESOURCE",
    "RELAY_SCOPE",
    "AZURE_EXTRA_HINT",
    "CREDENTIAL_KINDS",
    "ENV_CLIENT_ID",
    "is_token_credential",
    "fetch_access_token",
    "make_credential",
    "managed_identity_credential",
    "jwt_claims",
    "looks_like_jwt",
    "bare_jwt",
    "TokenCredentialLike",
]

#: The Entra ID resource (application ID URI) of Azure Relay.
RELAY_RESOURCE = "https://relay.azure.net/"
#: The scope Microsoft's .NET and Java clients request: the resource with ``/.default`` appended.
RELAY_SCOPE = RELAY_RESOURCE + "/.default"
#: What to install when azure-identity is missing.
AZURE_EXTRA_HINT = 'pip install "hybridconn[azure]"'
#: The Azure SDKs' variable for a user-assigned managed identity's client ID.
ENV_CLIENT_ID = "AZURE_CLIENT_ID"

#: Credentials :func:`make_credential` knows, by the names the CLI's ``--auth`` takes.
CREDENTIAL_KINDS = {
    "default": "DefaultAzureCredential",
    "managed-identity": "ManagedIdentityCredential",
    "azure-cli": "AzureCliCredential",
    "workload-identity": "WorkloadIdentityCredential",
    "environment": "EnvironmentCredential",
}


class TokenCredentialLike(Protocol):
    """What hybridconn needs of an azure-core ``TokenCredential``: ``get_token(*scopes)``
    returning an object with ``token`` and ``expires_on`` (``get_token_info`` is used when present)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:  # pragma: no cover - a protocol
        ...


def is_token_credential(value: object) -> bool:
    """True for an azure-core ``TokenCredential`` (or ``SupportsTokenInfo``): duck-typed, nothing imported."""
    return callable(getattr(value, "get_token_info", None)) or callable(getattr(value, "get_token", None))


def fetch_access_token(credential: Any, scope: str) -> Tuple[str, float]:
    """``(token, expires_on)`` from ``credential`` for ``scope``; ``get_token_info`` preferred when it has one.

    Raises whatever the credential raises (the provider translates it).
    """
    if callable(getattr(credential, "get_token_info", None)):
        answer = credential.get_token_info(scope)
    else:
        answer = credential.get_token(scope)
    token = getattr(answer, "token", None)
    if not isinstance(token, str) or not token:
        raise ValueError(f"{type(credential).__name__} returned no access token")
    expires_on = getattr(answer, "expires_on", None)
    if not isinstance(expires_on, (int, float)) or expires_on <= 0:
        expires_on = jwt_claims(token).get("exp", 0)
    return token, float(expires_on)


def jwt_claims(token: str) -> Dict[str, Any]:
    """The (unverified) payload of a JWT, or ``{}`` when ``token`` is not one. For expiry and names only."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def bare_jwt(token: str) -> str:
    """``token`` without a ``Bearer`` prefix (as the ``Authorization`` header would carry it)."""
    text = token.strip()
    return text[7:].lstrip() if text[:7].lower() == "bearer " else text


def looks_like_jwt(token: Optional[str]) -> bool:
    """True for a JWT (three base64url parts, a JSON header), with or without ``Bearer``; False for SAS."""
    if not token:
        return False
    text = bare_jwt(token)
    return text.startswith("eyJ") and text.count(".") == 2


def _identity_module() -> Any:
    try:
        import azure.identity
    except ImportError as exc:
        raise ConfigurationError(
            f"Microsoft Entra ID authentication needs the azure-identity package: {AZURE_EXTRA_HINT}"
        ) from exc
    return azure.identity


def managed_identity_credential(client_id: Optional[str] = None) -> Any:
    """azure-identity's ``ManagedIdentityCredential``: system-assigned, or the user-assigned identity
    whose client ID is ``client_id`` (default ``$AZURE_CLIENT_ID``, as ``DefaultAzureCredential`` reads it).

    :raises ConfigurationError: azure-identity is not installed.
    """
    identity = _identity_module()
    chosen = client_id or os.environ.get(ENV_CLIENT_ID) or None
    return identity.ManagedIdentityCredential(client_id=chosen) if chosen else identity.ManagedIdentityCredential()


def make_credential(kind: str, client_id: Optional[str] = None) -> Any:
    """A credential by the CLI's name for it (see :data:`CREDENTIAL_KINDS`).

    ``client_id`` picks a user-assigned managed identity (``managed-identity``,
    ``default``); without it the Azure SDKs' ``AZURE_CLIENT_ID`` applies.

    :raises ConfigurationError: an unknown kind, or azure-identity is not installed.
    """
    name = kind.strip().lower().replace("_", "-")
    if name not in CREDENTIAL_KINDS:
        raise ConfigurationError(f"unknown credential {kind!r}: choose one of {', '.join(CREDENTIAL_KINDS)}")
    if name == "managed-identity":
        return managed_identity_credential(client_id)
    identity = _identity_module()
    factory = getattr(identity, CREDENTIAL_KINDS[name])
    if name == "default" and client_id:
        return factory(managed_identity_client_id=client_id, workload_identity_client_id=client_id)
    if name == "workload-identity" and client_id:
        return factory(client_id=client_id)
    return factory()
