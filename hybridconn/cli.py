"""The ``hybridconn`` console script.

Each subcommand lives in its own module under :mod:`hybridconn.commands`,
exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Errors from the library become one clear line on stderr and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from . import __version__
from .exceptions import HybridConnectionError

__all__ = ["main", "build_parser", "COMMANDS"]

#: Subcommand modules, in the order `--help` lists them.
COMMANDS = ("demo", "emulator", "serve", "listen", "connect", "request", "token", "forward")

log: logging.Logger = logging.getLogger(__name__)


def _load(name: str) -> Optional[object]:
    try:
        return importlib.import_module(f"hybridconn.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"hybridconn.commands.{name}":
            return None  # not built yet
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridconn",
        description="Azure Relay Hybrid Connections from Python, with a local relay emulator.",
    )
    parser.add_argument("--version", action="version", version=f"hybridconn {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v INFO, -vv DEBUG)")
    common.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        sub = subparsers.add_parser(
            name, help=module.HELP, description=module.HELP, parents=[common]  # type: ignore[attr-defined]
        )
        module.add_arguments(sub)  # type: ignore[attr-defined]
        sub.set_defaults(_run=module.run)  # type: ignore[attr-defined]
    return parser


def _configure_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    _configure_logging(args.verbose, args.debug)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (HybridConnectionError, OSError) as exc:
        if args.debug:
            raise
        print(f"hybridconn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
