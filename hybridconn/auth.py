"""Authentication: connection strings, Shared Access Signature tokens, Microsoft Entra ID, token providers.

The public names live here; the work is done in :mod:`hybridconn._sas` (tokens),
:mod:`hybridconn._providers` (providers), :mod:`hybridconn._entra` (the Entra ID scope
and azure-identity credentials) and :mod:`hybridconn._connection_string`.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

import requests

from ._connection_string import MANAGED_IDENTITY, ConnectionString, connection_settings
from ._entra import RELAY_RESOURCE, RELAY_SCOPE, TokenCredentialLike, make_credential, managed_identity_credential
from ._providers import (
    CallableTokenProvider,
    EntraTokenProvider,
    SharedAccessKeyTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    TokenProviderLike,
    as_token_provider,
    renewal_point,
)
from ._sas import (  # noqa: F401 - _sign and _token_fields for tests that check signatures
    SAS_PREFIX,
    SasToken,
    _sign,
    _token_fields,
    generate_sas_token,
    normalize_audience,
    parse_sas_token,
    verify_sas_token,
)
from .exceptions import ConfigurationError

__all__ = [
    "ConnectionString",
    "SasToken",
    "generate_sas_token",
    "parse_sas_token",
    "verify_sas_token",
    "normalize_audience",
    "TokenProvider",
    "SharedAccessKeyTokenProvider",
    "StaticTokenProvider",
    "CallableTokenProvider",
    "EntraTokenProvider",
    "TokenCredentialLike",
    "RELAY_SCOPE",
    "RELAY_RESOURCE",
    "MANAGED_IDENTITY",
    "managed_identity_credential",
    "make_credential",
    "TokenProviderLike",
    "as_token_provider",
    "SasAuth",
    "AUTH_HEADER",
    "SAS_PREFIX",
    "renewal_point",
    "connection_settings",
]

#: The header Microsoft's clients put the token in, and that we use by default.
AUTH_HEADER = "ServiceBusAuthorization"


class SasAuth(requests.auth.AuthBase):
    """``requests`` auth that signs each request's ``ServiceBusAuthorization`` header.

    The audience is the request URL without its query; the provider's cache
    means a token is minted only when the previous one reaches its renewal point.
    """

    def __init__(self, provider: TokenProviderLike, audience: Optional[str] = None) -> None:
        resolved = as_token_provider(provider)
        if resolved is None:
            raise ConfigurationError("SasAuth needs a token provider")
        self.provider = resolved
        self.audience = audience

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        audience = self.audience or _http_audience(request.url or "")
        token, _ = self.provider.get_token(audience)
        request.headers[AUTH_HEADER] = token
        return request

    def __repr__(self) -> str:
        return f"SasAuth({self.provider!r})"


def _http_audience(url: str) -> str:
    parts = urlsplit(url)
    return f"http://{parts.netloc}{parts.path}"
