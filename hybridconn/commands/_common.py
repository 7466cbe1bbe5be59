"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import os
from typing import Optional

ENV_CONNECTION_STRING = "HYBRIDCONN_CONNECTION_STRING"


def add_connection_string(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connection-string",
        "-c",
        default=None,
        help=f"relay connection string with EntityPath (default: ${ENV_CONNECTION_STRING})",
    )


def connection_string_from(args: argparse.Namespace) -> Optional[str]:
    """--connection-string, else $HYBRIDCONN_CONNECTION_STRING, else None (use an embedded emulator)."""
    return getattr(args, "connection_string", None) or os.environ.get(ENV_CONNECTION_STRING) or None
