"""Azure Relay connection strings, and what a ``from_connection_string`` constructor takes from one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

from ._entra import managed_identity_credential
from ._providers import (
    EntraTokenProvider,
    SharedAccessKeyTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    as_token_provider,
)
from .addresses import Namespace
from .exceptions import ConfigurationError

__all__ = ["ConnectionString", "connection_settings", "path_alias", "MANAGED_IDENTITY"]

#: ``Authentication=`` value selecting managed identity, as Microsoft's .NET client writes it.
MANAGED_IDENTITY = "Managed Identity"

_CS_KEYS = {
    "endpoint": "endpoint",
    "sharedaccesskeyname": "shared_access_key_name",
    "sharedaccesskey": "shared_access_key",
    "sharedaccesssignature": "shared_access_signature",
    "entitypath": "entity_path",
    "usedevelopmentemulator": "use_development_emulator",
    "authentication": "authentication",
}
_CS_SECRETS = ("shared_access_key", "shared_access_signature")
_CS_WIRE = {
    "endpoint": "Endpoint",
    "shared_access_key_name": "SharedAccessKeyName",
    "shared_access_key": "SharedAccessKey",
    "shared_access_signature": "SharedAccessSignature",
    "entity_path": "EntityPath",
}


@dataclass(frozen=True)
class ConnectionString:
    """An Azure Relay connection string.

    ``Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=..;SharedAccessKey=..[;EntityPath=..]``,
    keys case-insensitive. ``UseDevelopmentEmulator=true`` (the Azure emulators'
    convention) means plain ``ws://``/``http://`` to the endpoint's host and port.
    ``Authentication=Managed Identity`` (.NET's spelling; case, spaces, ``-`` and ``_``
    do not matter) means Microsoft Entra ID with the managed identity, and no key fields.
    The repr and error messages never show the key or signature.
    """

    endpoint: str
    shared_access_key_name: Optional[str] = None
    shared_access_key: Optional[str] = field(default=None, repr=False)
    shared_access_signature: Optional[str] = field(default=None, repr=False)
    entity_path: Optional[str] = None
    use_development_emulator: bool = False
    #: ``"Managed Identity"`` or None (keys, or a credential given to ``from_connection_string``).
    authentication: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "ConnectionString":
        """Read ``Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...[;EntityPath=...]``.

        :raises ConfigurationError: empty, malformed, an unknown part, or a combination of
            credentials .NET's client refuses (the message never contains the key).
        """
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("connection string is empty")
        values: Dict[str, object] = {}
        previous: Optional[str] = None
        for index, part in enumerate(p for p in text.strip().split(";") if p.strip()):
            name, sep, value = part.partition("=")
            attr = _CS_KEYS.get(name.strip().lower())
            if not sep or attr is None:
                # Right after a key or signature, a "name" may be the tail of a secret that held a ';'.
                shown = f"part {index + 1}"
                if sep and previous not in _CS_SECRETS:
                    shown += f" ({name.strip()[:40]!r})"
                raise ConfigurationError(f"connection string has an unknown or malformed part: {shown}")
            previous = attr
            value = value.strip()
            if attr == "use_development_emulator":
                if value.lower() not in ("true", "false"):
                    raise ConfigurationError("UseDevelopmentEmulator must be true or false")
                values[attr] = value.lower() == "true"
            elif attr == "authentication":
                values[attr] = _authentication(value)
            else:
                values[attr] = value
        if not values.get("endpoint"):
            raise ConfigurationError("connection string has no Endpoint")
        _check_credential_fields(values)
        result = cls(**values)  # type: ignore[arg-type]
        _ = result.namespace  # validate the endpoint now, not on first use
        return result

    @classmethod
    def coerce(cls, value: Union[str, "ConnectionString"]) -> "ConnectionString":
        """A parsed connection string as is; text parsed."""
        return value if isinstance(value, ConnectionString) else cls.parse(value)

    @property
    def namespace(self) -> Namespace:
        """Where the endpoint is reached."""
        return Namespace.parse(self.endpoint, development=self.use_development_emulator)

    @property
    def managed_identity(self) -> bool:
        """True for ``Authentication=Managed Identity``."""
        return self.authentication == MANAGED_IDENTITY

    def token_provider(self, ttl: float = 3600) -> Optional[TokenProvider]:
        """The provider this connection string implies, or None for anonymous access.

        Managed identity makes azure-identity's ``ManagedIdentityCredential`` (the
        user-assigned identity named by ``$AZURE_CLIENT_ID``, else the system-assigned one).

        :raises ConfigurationError: managed identity without azure-identity installed.
        """
        if self.shared_access_signature:
            return StaticTokenProvider(self.shared_access_signature)
        if self.shared_access_key_name and self.shared_access_key:
            return SharedAccessKeyTokenProvider(self.shared_access_key_name, self.shared_access_key, ttl=ttl)
        if self.managed_identity:
            return EntraTokenProvider(managed_identity_credential())
        return None

    def resolve_path(self, path: Optional[str]) -> str:
        """The hybrid connection path: ``path`` or EntityPath (they must agree if both given)."""
        if path and self.entity_path and path.strip("/") != self.entity_path.strip("/"):
            raise ConfigurationError(
                f"path {path!r} differs from the connection string's EntityPath {self.entity_path!r}"
            )
        chosen = path or self.entity_path
        if not chosen:
            raise ConfigurationError("no hybrid connection path: pass path= or add EntityPath to the connection string")
        return chosen.strip("/")

    def to_connection_string(self, redact_secrets: bool = False) -> str:
        """The connection string as text that :meth:`parse` reads back (secrets included by default)."""
        parts = []
        for attr, wire in _CS_WIRE.items():
            value = getattr(self, attr)
            if value:
                parts.append(f"{wire}={'<redacted>' if redact_secrets and attr in _CS_SECRETS else value}")
        if self.use_development_emulator:
            parts.append("UseDevelopmentEmulator=true")
        if self.authentication:
            parts.append(f"Authentication={self.authentication}")
        return ";".join(parts)

    def __str__(self) -> str:
        # str() ends up in logs and f-strings: never the key. to_connection_string() has it.
        return self.to_connection_string(redact_secrets=True)


def connection_settings(
    connection_string: Union[str, ConnectionString], path: Optional[str], token_ttl: float, options: Dict[str, Any]
) -> Tuple[Namespace, str, Optional[TokenProvider]]:
    """(namespace, hybrid connection, token provider) for a ``from_connection_string`` constructor.

    ``token_provider=`` or ``credential=`` (an azure-identity credential) in ``options``
    (taken out of it) replaces the provider the connection string implies (a
    SharedAccessKey mints tokens valid ``token_ttl`` seconds); so a connection string
    with no key fields plus ``credential=`` means Microsoft Entra ID.
    """
    cs = ConnectionString.coerce(connection_string)
    given = options.pop("token_provider", None)
    credential = options.pop("credential", None)
    if given is not None and credential is not None:
        raise ConfigurationError("pass token_provider= or credential=, not both")
    if credential is not None:
        given = EntraTokenProvider(credential)
    provider = as_token_provider(given) if given is not None else cs.token_provider(ttl=token_ttl)
    return cs.namespace, cs.resolve_path(path), provider


def _authentication(value: str) -> Optional[str]:
    """``Authentication=``'s value: Managed Identity (.NET: spaces removed, case ignored), or None for Other."""
    folded = "".join(ch for ch in value.lower() if ch not in " -_")
    if folded == "managedidentity":
        return MANAGED_IDENTITY
    if folded in ("", "other"):
        return None
    # .NET reads anything else as "Other" and then silently has no credentials: say so instead.
    raise ConfigurationError(
        f"connection string has an unknown Authentication {value.strip()[:40]!r}: the one known value is "
        f"{MANAGED_IDENTITY!r} (for any other Entra ID credential, leave it out and pass credential=)"
    )


def _check_credential_fields(values: Dict[str, object]) -> None:
    """The combinations .NET's RelayConnectionStringBuilder.Validate() refuses."""
    key, sas, name = (values.get(a) for a in ("shared_access_key", "shared_access_signature", "shared_access_key_name"))
    if key and sas:
        raise ConfigurationError("connection string has both SharedAccessKey and SharedAccessSignature")
    if key and not name:
        raise ConfigurationError("connection string has SharedAccessKey but no SharedAccessKeyName")
    if values.get("authentication") == MANAGED_IDENTITY:
        present = [wire for attr, wire in _CS_WIRE.items() if attr.startswith("shared_access") and values.get(attr)]
        if present:
            raise ConfigurationError(
                f"connection string has Authentication={MANAGED_IDENTITY} and {', '.join(present)}: choose one"
            )


def path_alias(path: Optional[str], hybrid_connection: Optional[str]) -> Optional[str]:
    """``path``, or its older name ``hybrid_connection`` (they must agree when both are given)."""
    if path is not None and hybrid_connection is not None and path != hybrid_connection:
        raise ConfigurationError(f"path {path!r} and hybrid_connection {hybrid_connection!r} differ")
    return path if path is not None else hybrid_connection
