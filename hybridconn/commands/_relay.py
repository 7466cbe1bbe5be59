"""Where a subcommand's relay is: the given namespace, or an emulator started in this process."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional

from ..auth import ConnectionString
from ..exceptions import ConfigurationError
from ._common import ENV_CONNECTION_STRING, connection_string_from, credential_options, tls_options


@dataclass(frozen=True)
class Relay:
    """A connection string and what to call it in output (never the key).

    :ivar options: keyword arguments for a listener or client (``credential`` for ``--auth``).
    """

    connection_string: str
    path: str
    embedded: bool
    description: str
    options: Dict[str, Any] = field(default_factory=dict)


def add_path(parser: argparse.ArgumentParser, default_name: Optional[str] = None) -> None:
    extra = f", or {default_name!r} on an embedded emulator" if default_name else ""
    parser.add_argument(
        "--path", default=None, help=f"hybrid connection name (default: the connection string's EntityPath{extra})"
    )


def given_relay(args: argparse.Namespace) -> Optional[Relay]:
    """The relay named by --connection-string or $HYBRIDCONN_CONNECTION_STRING, if any."""
    text = connection_string_from(args)
    if not text:
        return None
    parsed = ConnectionString.parse(text)
    path = parsed.resolve_path(getattr(args, "path", None))
    where = f"namespace {parsed.namespace.authority}, hybrid connection {path!r}"
    return Relay(text, path, False, where, {**credential_options(args), **tls_options(args)})


def required_relay(args: argparse.Namespace) -> Relay:
    """Like :func:`given_relay`, but a missing connection string is an error (a sender needs a listener)."""
    relay = given_relay(args)
    if relay is None:
        raise ConfigurationError(
            f"no connection string: pass --connection-string or set {ENV_CONNECTION_STRING} "
            "(`hybridconn listen` on an embedded emulator prints one)"
        )
    return relay


@contextlib.contextmanager
def relay_or_emulator(args: argparse.Namespace, default_name: str) -> Iterator[Relay]:
    """The given relay, or a :class:`~hybridconn.emulator.RelayEmulator` running until the block ends."""
    relay = given_relay(args)
    if relay is not None:
        yield relay
        return
    from ..emulator import RelayEmulator

    path = getattr(args, "path", None) or default_name
    with RelayEmulator(hybrid_connections=[path]) as emulator:
        text = emulator.connection_string(path)
        authority = ConnectionString.parse(text).namespace.authority
        try:
            yield Relay(text, path, True, f"embedded relay emulator at {authority}, hybrid connection {path!r}")
        finally:
            emulator.stop(drain=2.0)  # deliver responses already given before the relay goes away
