"""``hybridconn serve MODULE:APP``: serve a WSGI application (Django, Flask, ...) through a relay.

``MODULE:APP`` names the application the way gunicorn does:
``myproject.wsgi:application`` for Django, ``app:app`` for Flask (``:APP``
defaults to ``application``). The current directory is importable, as it is
for ``python -m``.

An arbiter runs ``--workers`` worker processes, each with its own listener and
``--threads`` handler threads (see :mod:`hybridconn.serving`). The options
are gunicorn's where they mean the same; ``--help`` groups them as gunicorn
does. Settings also come from a Python config file (``-c``) and
``HYBRIDCONN_*`` environment variables: the command line wins over the
environment, which wins over the config file.

Without a connection string it starts an embedded relay emulator (on port
9350, or a free one if that is taken) and prints the URL to call, a
ready-to-paste curl command with a token and the connection string (the
emulator's key is a fixed development key, not a secret). SIGTERM or Ctrl-C
drains the workers and exits 0; a second Ctrl-C ends at once; SIGHUP reloads.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from typing import Any, Callable, Dict, Iterator, Optional

from ..addresses import http_url, token_audience
from ..auth import ConnectionString, generate_sas_token
from ..exceptions import ConfigurationError
from ..serving.app import check_app, load_app
from ..serving.settings import BY_NAME, GROUPS, SETTINGS, ServeConfig
from ..serving.sources import describe, resolve
from ._common import export_line
from ._relay import Relay

__all__ = ["NAME", "HELP", "add_arguments", "run", "serve", "load_app", "DEFAULT_PATH"]

NAME = "serve"
HELP = "serve a WSGI application (MODULE:APP, e.g. mysite.wsgi:application) through a hybrid connection"

DEFAULT_PATH = "hc1"
#: The curl command's token is for trying the app out on the emulator; a day is plenty.
EMULATOR_TOKEN_TTL = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser, with_app: bool = True) -> None:
    """The settings of :mod:`hybridconn.serving.settings` as options, in gunicorn-like groups.

    ``with_app=False`` leaves out ``MODULE:APP`` (``manage.py relayserve`` knows its application).
    """
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for setting in SETTINGS:
        group = groups[setting.group]
        if setting.name == "app":
            if not with_app:
                continue
            group.add_argument("app", nargs="?", default=argparse.SUPPRESS, metavar="MODULE:APP",
                               help=f"{setting.help} (or $HYBRIDCONN_APP)")
            continue
        text = setting.help if setting.cli_only else f"{setting.help} [${setting.env}]"
        default = str(setting.default).replace("%", "%%")  # argparse expands %(...)s in help
        if setting.is_flag:
            group.add_argument(*setting.flags, dest=setting.name, action=_Given, nargs=0, const=True,
                               default=argparse.SUPPRESS, help=text)
        else:
            group.add_argument(*setting.flags, dest=setting.name, action=_Given, default=argparse.SUPPRESS,
                               metavar=setting.metavar,
                               help=text if setting.default is None else f"{text} (default: {default})")


class _Given(argparse.Action):
    """Stores the value and remembers the option it came with (``--max-workers`` or ``--threads``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        flags = dict(getattr(namespace, "serve_flags", None) or {})
        flags[self.dest] = option_string or self.dest
        namespace.serve_flags = flags


def _given(args: argparse.Namespace) -> Dict[str, Any]:
    """The settings given on the command line (others are absent, not defaulted)."""
    given = {name: getattr(args, name) for name in BY_NAME if hasattr(args, name)}
    if "log_level" not in given and (getattr(args, "debug", False) or getattr(args, "verbose", 0) >= 2):
        given["log_level"] = "debug"
    return given


def run(args: argparse.Namespace) -> int:
    given, flags = _given(args), getattr(args, "serve_flags", None)
    return serve(resolve(given, flags=flags), reload=lambda: resolve(given, flags=flags))


def serve(config: ServeConfig, reload: Optional[Callable[[], ServeConfig]] = None, settings_source: str = "") -> int:
    """Serve with resolved settings until a signal ends it; the exit code.

    :param reload: returns freshly resolved settings (SIGHUP).
    """
    if config.print_config:
        sys.stdout.write("\n".join(describe(config)) + "\n")
        return 0
    if not config.app:
        raise ConfigurationError("no application: give MODULE:APP (e.g. mysite.wsgi:application), "
                                 "or app/wsgi_app in the config file, or $HYBRIDCONN_APP")
    check_app(config.app)
    from ..serving.worker import relay_options

    relay_options(config)  # a bad --auth or --ca-cert stops us here, in one line, not in every worker
    if config.preload or config.check_config:
        load_app(config.app)  # gunicorn's --preload imports in the arbiter: import errors stop us here
    if config.metrics:
        from ..serving.exposition import require_prometheus_client

        require_prometheus_client()
    if config.check_config:
        print(f"hybridconn serve: the configuration is valid ({config.workers} workers of {config.app})")
        return 0
    from ..serving.logs import configure_error_log

    configure_error_log(config.error_logfile, config.log_level, config.log_format)
    with _relay(config) as relay:
        config = dataclasses.replace(config, connection_string=relay.connection_string, path=relay.path)
        return _run_arbiter(config, relay, reload)


def _run_arbiter(config: ServeConfig, relay: Relay, reload: Optional[Callable[[], ServeConfig]]) -> int:
    from ..serving.arbiter import Arbiter

    def fresh() -> ServeConfig:
        assert reload is not None  # handed to the arbiter only when there is one
        return dataclasses.replace(reload(), connection_string=relay.connection_string, path=relay.path)

    arbiter = Arbiter(config, reload_config=fresh if reload is not None else None,
                      on_ready=lambda: _announce(config, relay))
    metrics = None
    if config.metrics:
        from ..serving.exposition import MetricsServer

        metrics = MetricsServer(config.metrics, lambda: arbiter.totals.view(len(arbiter.workers)),
                                arbiter.online_count)
        metrics.start()
        host, port = metrics.address
        sys.stdout.write(f"hybridconn serve: metrics on http://{host}:{port}/metrics\n")
        sys.stdout.flush()
    try:
        return arbiter.run()
    finally:
        if metrics is not None:
            metrics.close()


@contextlib.contextmanager
def _relay(config: ServeConfig) -> Iterator[Relay]:
    """The relay named by the settings, or an embedded emulator for as long as serving lasts."""
    if config.connection_string:
        parsed = ConnectionString.parse(config.connection_string)
        path = parsed.resolve_path(config.path)
        where = f"namespace {parsed.namespace.authority}, hybrid connection {path!r}"
        yield Relay(config.connection_string, path, False, where)
        return
    from ..serving.embedded import embedded_emulator

    path = config.path or DEFAULT_PATH
    with embedded_emulator(path) as (text, note):
        if note:
            sys.stdout.write(f"hybridconn serve: {note}\n")
        authority = ConnectionString.parse(text).namespace.authority
        yield Relay(text, path, True, f"embedded relay emulator at {authority}, hybrid connection {path!r}")


def _announce(config: ServeConfig, relay: Relay) -> None:
    connection = ConnectionString.parse(relay.connection_string)
    url = http_url(connection.namespace, relay.path, "/")
    out = sys.stdout
    workers = f"{config.workers} worker{'s' if config.workers != 1 else ''} x {config.threads} threads"
    out.write(f"hybridconn serve: {config.app} online on {relay.description} ({workers})\n")
    out.write(f"  URL: {url}\n")
    if relay.embedded and connection.shared_access_key_name and connection.shared_access_key:
        token = generate_sas_token(
            token_audience(connection.namespace, relay.path),
            connection.shared_access_key_name,
            connection.shared_access_key,
            ttl=EMULATOR_TOKEN_TTL,
        )
        out.write(f"  Try it: curl -H {shlex.quote('ServiceBusAuthorization: ' + token)} {url}\n")
        out.write(f"  Connection string: {export_line(relay.connection_string)}\n")
    else:
        # A real namespace's token is a credential: show how to make one, not one.
        out.write(f'  Try it: curl -H "ServiceBusAuthorization: $(hybridconn token {relay.path})" {url}\n')
    out.write("  Ctrl-C to stop (SIGTERM drains, SIGHUP reloads)\n")
    out.flush()
