"""A development identity endpoint: tokens of the emulator's dev issuer for azure-identity's own credentials.

So code that uses ``ManagedIdentityCredential``, ``DefaultAzureCredential``,
``ClientSecretCredential`` or ``WorkloadIdentityCredential`` runs unchanged, offline,
against the emulator. It speaks two of Entra ID's protocols, each on a local port:

- **App Service managed identity**, plain HTTP as on App Service
  (``GET /msi/token?api-version=2019-08-01&resource=...`` with ``X-IDENTITY-HEADER``): set
  ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` to :attr:`DevIdentityEndpoint.environment`'s
  values and azure-identity's managed identity credential asks here, as on App Service or
  Azure Functions;
- **OAuth 2.0 client credentials** (``/{tenant}/v2.0/.well-known/openid-configuration`` and
  ``POST /{tenant}/oauth2/v2.0/token`` with a client secret or a client assertion), over
  TLS as azure-identity requires (a self-signed certificate made with ``openssl``): pass
  :attr:`~DevIdentityEndpoint.authority` as ``authority=``, ``disable_instance_discovery=True``
  and :attr:`~DevIdentityEndpoint.certificate_path` as ``connection_verify=``.

Who the token stands for (its ``oid``): the system-assigned identity is
:data:`~.roles.DEV_PRINCIPAL_ID`; a user-assigned identity or an application is its client ID.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from .entra import DEV_TENANT_ID, mint_token
from .roles import DEV_PRINCIPAL_ID
from .tls import TlsSetup, server_context

__all__ = ["DevIdentityEndpoint", "MSI_PATH"]

log: logging.Logger = logging.getLogger(__name__)

MSI_PATH = "/msi/token"
_JSON = "application/json"


class _Reply(Exception):
    """An HTTP answer: status and JSON body."""

    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class DevIdentityEndpoint:
    """A local token endpoint for azure-identity (see the module docstring); a context manager.

    :param client_secrets: ``{client_id: secret}`` of applications (ClientSecretCredential).
    :param federated_clients: client IDs that sign in with a client assertion (ClientAssertionCredential,
        WorkloadIdentityCredential): any JWT-shaped assertion is accepted for them.
    :param user_assigned: client IDs of user-assigned managed identities.
    :param system_principal_id: the system-assigned identity's object ID.
    :param token_lifetime: seconds each token is valid.
    :param oauth: False serves managed identity only (no TLS port, no ``openssl`` needed).
    """

    def __init__(
        self,
        *,
        client_secrets: Optional[Mapping[str, str]] = None,
        federated_clients: Iterable[str] = (),
        user_assigned: Iterable[str] = (),
        system_principal_id: str = DEV_PRINCIPAL_ID,
        token_lifetime: float = 3600,
        identity_header: str = "hybridconn-dev-identity-header",
        tenant_id: str = DEV_TENANT_ID,
        oauth: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self._secrets = dict(client_secrets or {})
        self.federated_clients: FrozenSet[str] = frozenset(federated_clients)
        self.user_assigned: FrozenSet[str] = frozenset(user_assigned)
        self.system_principal_id = system_principal_id
        self.token_lifetime: float = float(token_lifetime)
        self.identity_header = identity_header
        self.tenant_id = tenant_id
        self.host = host
        self.oauth = oauth
        self._tls: Optional[TlsSetup] = None
        self._servers: Dict[str, HTTPServer] = {}
        self._threads: List[threading.Thread] = []
        self.issued: int = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "DevIdentityEndpoint":
        """Bind and serve (no-op when running). Returns self."""
        if self._servers:
            return self
        try:
            self._serve("msi", None)
            if self.oauth:
                self._tls = server_context("self-signed")
                self._serve("oauth", self._tls.context)
        except Exception:
            self.close()
            raise
        log.info("development identity endpoint: managed identity on %s%s", self._url("msi"),
                 f", OAuth on {self.authority}" if self.oauth else "")
        return self

    def _serve(self, kind: str, context: Optional[ssl.SSLContext]) -> None:
        server = HTTPServer((self.host, 0), _handler_for(self))
        if context is not None:
            # The handshake happens on the handler's first read, under its timeout: a client that
            # connects and says nothing cannot hold the one serving thread (nor close()).
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._servers[kind] = server
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  name=f"hybridconn-identity-{kind}-{server.server_address[1]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving (idempotent)."""
        servers, threads = list(self._servers.values()), self._threads
        self._servers, self._threads = {}, []
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout)
        if self._tls is not None:
            self._tls.cleanup()
            self._tls = None

    def __enter__(self) -> "DevIdentityEndpoint":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ where it is

    def _url(self, kind: str) -> str:
        server = self._servers.get(kind)
        if server is None:
            raise RuntimeError(f"the identity endpoint is not serving {kind} (start() it; oauth=True for OAuth)")
        return f"{'https' if kind == 'oauth' else 'http'}://{self.host}:{server.server_address[1]}"

    @property
    def authority(self) -> str:
        """``authority=`` for azure-identity's client credentials (an https URL)."""
        return self._url("oauth")

    @property
    def certificate_path(self) -> Optional[str]:
        """The OAuth port's self-signed certificate, to trust (``connection_verify=``)."""
        return self._tls.certificate_path if self._tls is not None else None

    @property
    def environment(self) -> Dict[str, str]:
        """``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, as App Service sets them."""
        return {"IDENTITY_ENDPOINT": self._url("msi") + MSI_PATH, "IDENTITY_HEADER": self.identity_header}

    # ------------------------------------------------------------------ answers (called by the handler)

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
               secure: bool = True) -> Tuple[int, Dict[str, Any]]:
        """(status, JSON body) for one request; ``secure``: it came over TLS (the OAuth port)."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            if method == "GET" and parts.path == MSI_PATH and not secure:
                return 200, self._managed_identity(query, headers)
            segments = [s for s in parts.path.split("/") if s]
            if method == "GET" and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                return 200, self._openid_configuration(segments[0])
            if method == "POST" and segments[1:] == ["oauth2", "v2.0", "token"] and secure:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                return 200, self._client_credentials(segments[0], form)
        except _Reply as reply:
            return reply.status, reply.body
        return 404, {"error": "not_found", "error_description": f"no such endpoint: {method} {parts.path}"}

    def _managed_identity(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Dict[str, Any]:
        if headers.get("x-identity-header") != self.identity_header:
            raise _Reply(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"})
        resource = query.get("resource", "")
        if not resource:
            raise _Reply(400, {"statusCode": 400, "message": "resource is required"})
        client_id = query.get("client_id") or query.get("object_id") or query.get("mi_res_id")
        if client_id and client_id not in self.user_assigned:
            raise _Reply(400, {"statusCode": 400, "message": f"No managed identity found for {client_id}"})
        principal = client_id or self.system_principal_id
        token, expires_on = self._mint(principal, resource)
        return {"access_token": token, "expires_on": str(expires_on), "resource": resource,
                "token_type": "Bearer", "client_id": principal}

    def _openid_configuration(self, tenant: str) -> Dict[str, Any]:
        base = f"{self.authority}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }

    def _client_credentials(self, tenant: str, form: Mapping[str, str]) -> Dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise _oauth_error(400, "unsupported_grant_type", "only client_credentials is served here")
        client_id = form.get("client_id", "")
        if client_id in self._secrets:
            if form.get("client_secret") != self._secrets[client_id]:
                raise _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif client_id in self.federated_clients:
            assertion = form.get("client_assertion", "")
            if assertion.count(".") != 2:
                raise _oauth_error(401, "invalid_client", "AADSTS700025: the client assertion is not a JWT.")
        else:
            raise _oauth_error(400, "unauthorized_client", f"AADSTS700016: application {client_id!r} not found.")
        scope = form.get("scope", "").split()
        resource = next((s[: -len("/.default")] for s in scope if s.endswith("/.default")), "")
        if not resource:
            raise _oauth_error(400, "invalid_scope", "AADSTS70011: a scope ending in /.default is required.")
        token, expires_on = self._mint(client_id, resource, tenant)
        lifetime = int(self.token_lifetime)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def _mint(self, principal: str, audience: str, tenant: Optional[str] = None) -> Tuple[str, int]:
        self.issued += 1
        return mint_token(principal, lifetime=self.token_lifetime, audience=audience,
                          tenant_id=tenant if tenant and tenant != "organizations" else self.tenant_id)

    def __repr__(self) -> str:
        where = ", ".join(self._url(kind) for kind in self._servers) or "stopped"
        return f"DevIdentityEndpoint({where})"


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    return _Reply(status, {"error": error, "error_description": description, "error_codes": []})


def _handler_for(endpoint: DevIdentityEndpoint) -> type:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # a client that stalls mid-request does not hold the one thread for long

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            secure = isinstance(self.connection, ssl.SSLSocket)
            status, payload = endpoint.answer(self.command, self.path, headers, body, secure)
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", _JSON)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
            # The request line: it holds no secret (form bodies are never logged).
            log.debug("identity endpoint: " + format, *args)  # noqa: G003 - http.server's own format

    return Handler
