"""``hybridconn token RESOURCE``: print a Shared Access Signature token (or a Microsoft Entra ID one).

This is the one place hybridconn prints a token on purpose: it is for pasting
into curl (``-H "ServiceBusAuthorization: $(hybridconn token hc1)"``) or a
browser tool, so it goes to stdout and nowhere else. With ``--auth`` (or a
connection string with ``Authentication=Managed Identity``) it prints the Entra ID
access token for the relay's scope instead: it is valid for every hybrid
connection the principal has a role on, so RESOURCE and ``--ttl`` do not apply.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..addresses import token_audience
from ..auth import ConnectionString, EntraTokenProvider, generate_sas_token, managed_identity_credential
from ..exceptions import ConfigurationError
from ._common import add_connection_string, connection_string_from, credential_options

NAME = "token"
HELP = "print a SAS token for a hybrid connection or a full resource URI (with --auth: an Entra ID token)"

DEFAULT_TTL = 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "resource",
        metavar="RESOURCE",
        nargs="?",
        default=None,
        help="a hybrid connection name (signed for the connection string's namespace) or a full "
        "URI such as http://ns.servicebus.windows.net/hc1 (default: the connection string's EntityPath)",
    )
    add_connection_string(parser)
    parser.add_argument("--key-name", default=None, help="SharedAccessKeyName (default: from the connection string)")
    parser.add_argument("--key", default=None, help="SharedAccessKey (default: from the connection string)")
    parser.add_argument(
        "--ttl", type=float, default=DEFAULT_TTL, help=f"seconds the token stays valid (default: {DEFAULT_TTL})"
    )


def resolve_audience(resource: Optional[str], connection: Optional[ConnectionString]) -> str:
    """The URI to sign: RESOURCE as given if absolute, else ``http://<namespace>/<name>``."""
    if resource and "://" in resource:
        return resource
    if connection is None:
        raise ConfigurationError(
            "RESOURCE is a name, so a namespace is needed: pass --connection-string or set "
            "HYBRIDCONN_CONNECTION_STRING, or give a full URI"
        )
    name = resource or connection.entity_path
    if not name:
        raise ConfigurationError("no RESOURCE given and the connection string has no EntityPath")
    return token_audience(connection.namespace, name)


def run(args: argparse.Namespace) -> int:
    if args.ttl <= 0:
        raise ConfigurationError("--ttl must be positive")
    text = connection_string_from(args)
    connection = ConnectionString.parse(text) if text else None
    if _print_entra_token(args, connection):
        return 0
    key_name = args.key_name or (connection.shared_access_key_name if connection else None)
    key = args.key or (connection.shared_access_key if connection else None)
    if not key_name or not key:
        raise ConfigurationError(
            "no key to sign with: pass --key-name and --key, or a connection string with "
            "SharedAccessKeyName and SharedAccessKey"
        )
    audience = resolve_audience(args.resource, connection)
    print(generate_sas_token(audience, key_name, key, ttl=args.ttl))
    if args.verbose:
        print(f"signed for {audience}, valid {args.ttl:g} s", file=sys.stderr)
    return 0


def _print_entra_token(args: argparse.Namespace, connection: Optional[ConnectionString]) -> bool:
    """Print an Entra ID token when --auth names a credential or the connection string says managed identity."""
    credential = credential_options(args).get("credential")
    if credential is None and connection is not None and connection.managed_identity and not args.key:
        credential = managed_identity_credential()
    if credential is None:
        return False
    provider = EntraTokenProvider(credential)
    token, expires_on = provider.get_token("")
    print(token)
    if args.verbose:
        print(f"{type(provider.credential).__name__} token for {provider.scope}, expires at {expires_on:.0f}",
              file=sys.stderr)
    return True
