"""The ``hybridconn`` console script.

Each subcommand lives in its own module under :mod:`hybridconn.commands`,
exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Every error - a bad command line included - becomes one line on stderr that
names command-line options, and a documented exit code
(:data:`hybridconn.commands._exit.EXIT_CODES`); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, NoReturn, Optional

from . import __version__
from .commands import _exit
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


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (and exit code 2) instead of the usage text and a line."""

    def error(self, message: str) -> "NoReturn":
        self.exit(_exit.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _exit_codes_epilog() -> str:
    rows = ", ".join(f"{code} {meaning}" for code, _, meaning in _exit.EXIT_CODES)
    return f"exit codes: {rows}"


def build_parser() -> argparse.ArgumentParser:
    """The ``hybridconn`` parser with a subparser per available command."""
    parser = _Parser(
        prog="hybridconn",
        description="Azure Relay Hybrid Connections from Python, with a local relay emulator.",
        epilog=_exit_codes_epilog(),
    )
    parser.add_argument("--version", action="version", version=f"hybridconn {__version__}")
    common = _Parser(add_help=False)
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
    """Run ``hybridconn ARGV...`` and return its exit code (one of ``_exit.EXIT_CODES``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        print(f"hybridconn: error: a COMMAND is needed: {', '.join(COMMANDS)} (see hybridconn --help)", file=sys.stderr)
        return _exit.USAGE
    _configure_logging(args.verbose, args.debug)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return _exit.INTERRUPTED
    except (HybridConnectionError, OSError) as exc:
        if args.debug:
            raise
        print(f"hybridconn {args.command}: error: {_exit.cli_message(exc)}", file=sys.stderr)
        return _exit.exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
