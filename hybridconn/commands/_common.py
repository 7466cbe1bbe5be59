"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from typing import Any, Dict, Optional

from .._entra import CREDENTIAL_KINDS

ENV_CONNECTION_STRING = "HYBRIDCONN_CONNECTION_STRING"
#: A CA bundle (PEM) every command trusts for wss/https, as --ca-cert does (the TLS emulator prints it).
ENV_CA_CERT = "HYBRIDCONN_CA_CERT"
#: How to authenticate when --auth is not given (the Azure SDKs' AZURE_* variables configure the credential).
ENV_AUTH = "HYBRIDCONN_AUTH"
#: --auth's values: the connection string's own credentials, or a Microsoft Entra ID credential.
AUTH_MODES = ("connection-string", *CREDENTIAL_KINDS)


def add_connection_string(parser: argparse.ArgumentParser, tls: bool = True, insecure: bool = True) -> None:
    """``--connection-string``/``-c``, ``--auth`` for how to authenticate with it, and (``tls``)
    ``--ca-cert`` and (``insecure``) ``--insecure`` for how to trust the relay."""
    parser.add_argument(
        "--connection-string",
        "-c",
        default=None,
        help=f"relay connection string with EntityPath (default: ${ENV_CONNECTION_STRING})",
    )
    parser.add_argument(
        "--auth",
        default=None,
        choices=AUTH_MODES,
        metavar="MODE",
        help="connection-string (its SharedAccessKey/Signature, or Authentication=Managed Identity) or a "
        "Microsoft Entra ID credential from azure-identity: default (DefaultAzureCredential), managed-identity "
        "($AZURE_CLIENT_ID picks a user-assigned one), azure-cli, workload-identity, environment "
        f"(default: ${ENV_AUTH}, else connection-string)",
    )
    if not tls:
        return
    parser.add_argument(
        "--ca-cert",
        "--cacert",
        default=None,
        metavar="FILE",
        help=f"trust this CA bundle (PEM) for wss/https, e.g. the TLS emulator's certificate (default: ${ENV_CA_CERT})",
    )
    if not insecure:
        return
    parser.add_argument(
        "--insecure", "-k", action="store_true", help="do not verify the relay's TLS certificate (test relays only)"
    )


def credential_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``{"credential": ...}`` when --auth (or $HYBRIDCONN_AUTH) names an Entra ID credential, else ``{}``.

    :raises ConfigurationError: an unknown $HYBRIDCONN_AUTH, or azure-identity is not installed.
    """
    mode = (getattr(args, "auth", None) or os.environ.get(ENV_AUTH) or "connection-string").strip().lower()
    if mode not in AUTH_MODES:
        from ..exceptions import ConfigurationError

        source = "--auth" if getattr(args, "auth", None) else f"${ENV_AUTH}"
        raise ConfigurationError(f"{source} is {mode!r}: choose one of {', '.join(AUTH_MODES)}")
    if mode == "connection-string":
        return {}
    from .._entra import make_credential

    return {"credential": make_credential(mode)}


def port_number(text: str) -> int:
    """argparse ``type=`` for a TCP port: 0 (any free one) to 65535, else a one-line usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: use 1-65535, or 0 for any free one")
    return port


def listen_error(exc: OSError, host: str, port: int, option: str = "--port") -> OSError:
    """``exc`` (from bind) as an OSError naming the address, with a hint for a port in use."""
    hint = ""
    if exc.errno == errno.EADDRINUSE:
        hint = f" (another process has it: pass another {option}, or {option} 0 for any free one)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        hint = " (no interface of this machine has that address)"
    code = errno.EADDRNOTAVAIL if isinstance(exc, socket.gaierror) else exc.errno  # an unknown --host
    return OSError(code, f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}")


def tls_options(args: argparse.Namespace, insecure: bool = True) -> Dict[str, Any]:
    """``{"verify": ...}`` for --ca-cert (or $HYBRIDCONN_CA_CERT) or --insecure, else ``{}`` (system trust).

    :raises ConfigurationError: both --ca-cert and --insecure, or a CA bundle that does not exist.
    """
    from ..exceptions import ConfigurationError

    ca_cert = getattr(args, "ca_cert", None)
    insecure = insecure and bool(getattr(args, "insecure", False))  # False: the command's --insecure is not the relay's
    if ca_cert and insecure:
        raise ConfigurationError("--ca-cert and --insecure contradict each other: pass one")
    if insecure:
        return {"verify": False}
    ca_cert = ca_cert or os.environ.get(ENV_CA_CERT) or None
    if ca_cert is None:
        return {}
    if not os.path.isfile(ca_cert):
        source = "--ca-cert" if getattr(args, "ca_cert", None) else f"${ENV_CA_CERT}"
        raise ConfigurationError(f"{source} {ca_cert!r}: no such CA bundle file")
    return {"verify": ca_cert}


def connection_string_from(args: argparse.Namespace) -> Optional[str]:
    """--connection-string, else $HYBRIDCONN_CONNECTION_STRING, else None (use an embedded emulator)."""
    return getattr(args, "connection_string", None) or os.environ.get(ENV_CONNECTION_STRING) or None


def export_line(value: str, name: str = ENV_CONNECTION_STRING) -> str:
    """``export NAME='value'``: ready to paste into a POSIX shell (a bare ``;`` would end the command)."""
    return f"export {name}=" + "'" + value.replace("'", "'\\''") + "'"
