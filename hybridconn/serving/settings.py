"""Every ``hybridconn serve`` setting in one table, and the value object they resolve to.

A setting has one name (``graceful_timeout``), the command-line flags that set
it (gunicorn's where the meaning is the same: ``--graceful-timeout``), an
environment variable (``HYBRIDCONN_GRACEFUL_TIMEOUT``) and the names a config
file may use for it (gunicorn's config-file names too: ``accesslog``,
``loglevel``, ``preload_app``). :mod:`.sources` reads the values from the
command line, the environment and a config file; :class:`ServeConfig` holds
the checked result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Optional, Tuple

from ..exceptions import ConfigurationError
from ..protocol import MAX_LISTENERS

__all__ = [
    "Setting",
    "SETTINGS",
    "BY_NAME",
    "ServeConfig",
    "GROUPS",
    "DEFAULT_ACCESS_LOGFORMAT",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "parse_bool",
]

ENV_PREFIX = "HYBRIDCONN_"

#: gunicorn's default (the Combined Log Format), then the relay's request id, the duration and how it travelled.
DEFAULT_ACCESS_LOGFORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(request_id)s %(M)sms %(via)s'

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: The ``--help`` groups, in gunicorn's manner, in the order shown.
GROUPS = ("Relay", "Config File", "Worker Processes", "Server Mechanics", "Logging", "Metrics and Health")


def parse_bool(text: Any) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case), or a bool as it is."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true/false, yes/no, on/off or 1/0)")


def _int(low: int, high: Optional[int] = None) -> Callable[[Any], int]:
    def parse(text: Any) -> int:
        if isinstance(text, bool):
            raise ValueError(f"{text!r} is not a whole number")
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"{value} is outside {low}..{high}" if high is not None else f"{value} is below {low}")
        return value

    return parse


def _seconds(text: Any) -> float:
    value = float(text)
    if value < 0 or value != value:
        raise ValueError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a string")
    return text


def _optional_text(text: Any) -> Optional[str]:
    return None if text is None or text == "" else _text(text)


def _level(text: Any) -> str:
    value = _text(text).lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return value


def _log_format(text: Any) -> str:
    value = _text(text).lower()
    if value not in ("text", "json"):
        raise ValueError(f"{text!r} is not 'text' or 'json'")
    return value


def _address(text: Any) -> Optional[str]:
    value = _optional_text(text)
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9100)")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its name, where it can be given, how its text is read, its default."""

    name: str
    group: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    flags: Tuple[str, ...] = ()
    metavar: Optional[str] = None
    aliases: Tuple[str, ...] = ()  # other config-file names (gunicorn's)
    is_flag: bool = False  # a command-line switch without a value
    cli_only: bool = False  # no environment variable, no config-file name
    env_fallbacks: Tuple[str, ...] = ()  # read when HYBRIDCONN_<NAME> is not set

    @property
    def env(self) -> Optional[str]:
        return None if self.cli_only else ENV_PREFIX + self.name.upper()


SETTINGS: Tuple[Setting, ...] = (
    Setting(
        "app",
        "Relay",
        _optional_text,
        None,
        "the WSGI application, MODULE:APP (e.g. mysite.wsgi:application)",
        aliases=("wsgi_app",),
    ),
    Setting(
        "connection_string",
        "Relay",
        _optional_text,
        None,
        "relay connection string with EntityPath (default: none, an embedded relay emulator)",
        flags=("--connection-string",),
        metavar="TEXT",
    ),
    Setting(
        "path",
        "Relay",
        _optional_text,
        None,
        "hybrid connection name (default: the connection string's EntityPath, or hc1 on an embedded emulator)",
        flags=("--path",),
        metavar="NAME",
    ),
    Setting(
        "auth",
        "Relay",
        _optional_text,
        None,
        "how the workers authenticate: connection-string (the default), or a Microsoft Entra ID credential "
        "(default, managed-identity, azure-cli, workload-identity, environment), as for the other commands",
        flags=("--auth",),
        metavar="MODE",
    ),
    Setting(
        "ca_cert",
        "Relay",
        _optional_text,
        None,
        "trust this CA bundle (PEM) for wss/https, e.g. the TLS emulator's certificate",
        flags=("--ca-cert", "--cacert"),
        metavar="FILE",
    ),
    Setting(
        "insecure",
        "Relay",
        parse_bool,
        False,
        "do not verify the relay's TLS certificate (test relays only)",
        flags=("--insecure", "-k"),
        is_flag=True,
    ),
    Setting(
        "open_timeout",
        "Relay",
        _seconds,
        30.0,
        "seconds each worker's listener has to come online",
        flags=("--open-timeout",),
        metavar="S",
    ),
    Setting(
        "config",
        "Config File",
        _optional_text,
        None,
        "a Python config file (default: ./hybridconn.conf.py when it exists)",
        flags=("-c", "--config"),
        metavar="PATH",
    ),
    Setting(
        "check_config",
        "Config File",
        parse_bool,
        False,
        "check the configuration and exit",
        flags=("--check-config",),
        is_flag=True,
        cli_only=True,
    ),
    Setting(
        "print_config",
        "Config File",
        parse_bool,
        False,
        "print the resolved settings and where each came from",
        flags=("--print-config",),
        is_flag=True,
        cli_only=True,
    ),
    Setting(
        "workers",
        "Worker Processes",
        _int(1, MAX_LISTENERS),
        1,
        f"worker processes, each with its own listener (1..{MAX_LISTENERS}, the relay's limit per hybrid connection)",
        flags=("-w", "--workers"),
        metavar="N",
        env_fallbacks=("WEB_CONCURRENCY",),
    ),
    Setting(
        "threads",
        "Worker Processes",
        _int(1),
        16,
        "handler threads per worker (requests handled at once)",
        flags=("--threads", "--max-workers"),
        metavar="M",
    ),
    Setting(
        "max_requests",
        "Worker Processes",
        _int(0),
        0,
        "restart a worker (gracefully, its replacement online first) after this many requests; 0: never",
        flags=("--max-requests",),
        metavar="N",
    ),
    Setting(
        "max_requests_jitter",
        "Worker Processes",
        _int(0),
        0,
        "add up to this many requests to --max-requests, per worker, so workers do not restart together",
        flags=("--max-requests-jitter",),
        metavar="N",
    ),
    Setting(
        "timeout",
        "Worker Processes",
        _seconds,
        30.0,
        "a worker silent this many seconds (no heartbeat) is killed and replaced; 0: never",
        flags=("-t", "--timeout"),
        metavar="S",
    ),
    Setting(
        "graceful_timeout",
        "Worker Processes",
        _seconds,
        30.0,
        "on SIGTERM, SIGINT or a reload, seconds in-flight requests get before they are answered 503",
        flags=("--graceful-timeout",),
        metavar="S",
    ),
    Setting(
        "preload",
        "Server Mechanics",
        parse_bool,
        False,
        "import the application once in the arbiter and fork workers from a process holding it",
        flags=("--preload",),
        is_flag=True,
        aliases=("preload_app",),
    ),
    Setting(
        "pidfile",
        "Server Mechanics",
        _optional_text,
        None,
        "write the arbiter's process id to this file",
        flags=("-p", "--pid"),
        metavar="PATH",
    ),
    Setting(
        "health_file",
        "Server Mechanics",
        _optional_text,
        None,
        "touch this file every few seconds while a listener is online (removed when none is)",
        flags=("--health-file",),
        metavar="PATH",
    ),
    Setting(
        "access_logfile",
        "Logging",
        _optional_text,
        None,
        "the access log: a path, or - for stdout (default: none)",
        flags=("--access-logfile",),
        metavar="PATH",
        aliases=("accesslog",),
    ),
    Setting(
        "access_logformat",
        "Logging",
        _text,
        DEFAULT_ACCESS_LOGFORMAT,
        "the access log line's format (gunicorn's atoms; see README)",
        flags=("--access-logformat", "--access-log-format"),
        metavar="FORMAT",
        aliases=("access_log_format",),
    ),
    Setting(
        "error_logfile",
        "Logging",
        _text,
        "-",
        "the error log: a path, or - for stderr",
        flags=("--error-logfile", "--log-file"),
        metavar="PATH",
        aliases=("errorlog",),
    ),
    Setting(
        "log_level",
        "Logging",
        _level,
        "info",
        f"the error log's level: {', '.join(LOG_LEVELS)}",
        flags=("--log-level",),
        metavar="LEVEL",
        aliases=("loglevel",),
    ),
    Setting(
        "log_format",
        "Logging",
        _log_format,
        "text",
        "text, or json: one JSON object per line in both logs, for log shippers",
        flags=("--log-format",),
        metavar="FORMAT",
    ),
    Setting(
        "metrics",
        "Metrics and Health",
        _address,
        None,
        "serve Prometheus metrics on http://HOST:PORT/metrics (and /health); needs hybridconn[metrics]",
        flags=("--metrics",),
        metavar="HOST:PORT",
    ),
)

BY_NAME: Dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def _where(setting: Setting, source: str, flags: Optional[Dict[str, str]]) -> str:
    if source == "command line":
        long_flags = [flag for flag in setting.flags if flag.startswith("--")]
        return (flags or {}).get(setting.name) or (long_flags[0] if long_flags else setting.name)
    if source.startswith(ENV_PREFIX) or source in setting.env_fallbacks:
        return source
    return f"{setting.name} in {source}"


@dataclass(frozen=True)
class ServeConfig:
    """The resolved settings of one ``hybridconn serve`` (see :data:`SETTINGS` for each).

    :ivar sources: where each value came from (``default``, ``config file``, an environment
        variable's name, ``command line``, ``Django settings``).
    """

    app: Optional[str] = None
    connection_string: Optional[str] = field(default=None, repr=False)
    path: Optional[str] = None
    auth: Optional[str] = None
    ca_cert: Optional[str] = None
    insecure: bool = False
    open_timeout: float = 30.0
    config: Optional[str] = None
    check_config: bool = False
    print_config: bool = False
    workers: int = 1
    threads: int = 16
    max_requests: int = 0
    max_requests_jitter: int = 0
    timeout: float = 30.0
    graceful_timeout: float = 30.0
    preload: bool = False
    pidfile: Optional[str] = None
    health_file: Optional[str] = None
    access_logfile: Optional[str] = None
    access_logformat: str = DEFAULT_ACCESS_LOGFORMAT
    error_logfile: str = "-"
    log_level: str = "info"
    log_format: str = "text"
    metrics: Optional[str] = None
    sources: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_values(
        cls, values: Dict[str, Any], sources: Dict[str, str], flags: Optional[Dict[str, str]] = None
    ) -> "ServeConfig":
        """Check every value with its setting's parser; a bad one is a ConfigurationError naming where it
        was given: the option as typed (``flags``), the environment variable, or the config file."""
        checked: Dict[str, Any] = {}
        for name, raw in values.items():
            setting = BY_NAME[name]
            try:
                checked[name] = raw if raw is None and setting.default is None else setting.parse(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"{_where(setting, sources.get(name, 'default'), flags)}: {exc}") from None
        return cls(**checked, sources=dict(sources))

    def as_dict(self) -> Dict[str, Any]:
        """The settings as a plain dict (for passing to worker processes)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
