"""Where settings come from, and which wins.

Lowest to highest: the defaults, a config file (``-c PATH``, else
``./hybridconn.conf.py`` when it exists; or, for ``manage.py relayserve``,
Django's ``HYBRIDCONN_*`` settings), the environment (``HYBRIDCONN_<NAME>``;
``WEB_CONCURRENCY`` for the worker count, as gunicorn reads it), and the
command line. A config file is Python, run once, as gunicorn's is: its
top-level names are setting names (``workers = 4``) or gunicorn's config-file
names for the same settings (``accesslog``, ``loglevel``, ``preload_app``).
"""

from __future__ import annotations

import logging
import os
import runpy
import types
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._redact import redact
from ..exceptions import ConfigurationError
from .settings import BY_NAME, ENV_PREFIX, SETTINGS, ServeConfig

__all__ = ["resolve", "read_config_file", "describe", "DEFAULT_CONFIG_FILE", "Layer"]

log: logging.Logger = logging.getLogger(__name__)

#: Read when no ``-c`` is given and the file exists in the current directory (gunicorn reads gunicorn.conf.py).
DEFAULT_CONFIG_FILE = "hybridconn.conf.py"

#: A named source of values: ``("config file hybridconn.conf.py", {"workers": 4})``.
Layer = Tuple[str, Dict[str, Any]]

_NAMES: Dict[str, str] = {alias: s.name for s in SETTINGS if not s.cli_only for alias in (s.name,) + s.aliases}


def read_config_file(path: str) -> Tuple[Dict[str, Any], List[str]]:
    """The settings a Python config file sets, and warnings about names it sets that are no setting."""
    if not os.path.isfile(path):
        raise ConfigurationError(f"config file {path!r} does not exist")
    try:
        namespace = runpy.run_path(path, run_name="__hybridconn_config__")
    except Exception as exc:  # noqa: BLE001 - any error in the user's file is a configuration error
        raise ConfigurationError(f"config file {path!r} failed: {type(exc).__name__}: {exc}") from exc
    values: Dict[str, Any] = {}
    warnings: List[str] = []
    for key, value in namespace.items():
        if key.startswith("_") or isinstance(value, types.ModuleType) or callable(value):
            continue  # helpers, imports and functions of the file's own
        name = _NAMES.get(key)
        if name is None:
            warnings.append(f"config file {path!r}: {key!r} is not a setting (ignored)")
            continue
        values[name] = value
    return values, warnings


def _environment(environ: Mapping[str, str]) -> List[Layer]:
    layers: List[Layer] = []
    for setting in SETTINGS:
        if setting.env is None:
            continue
        for variable in (setting.env,) + setting.env_fallbacks:
            if environ.get(variable, "") != "":
                layers.append((variable, {setting.name: environ[variable]}))
                break
    return layers


def _config_layer(cli: Dict[str, Any], environ: Mapping[str, str]) -> Optional[Tuple[str, Layer, List[str]]]:
    path = cli.get("config") or environ.get(ENV_PREFIX + "CONFIG") or None
    if path is None:
        if not os.path.isfile(DEFAULT_CONFIG_FILE):
            return None
        path = DEFAULT_CONFIG_FILE
    values, warnings = read_config_file(path)
    return path, (f"config file {path}", values), warnings


def resolve(cli: Dict[str, Any], environ: Optional[Mapping[str, str]] = None,
            settings_layer: Optional[Layer] = None, flags: Optional[Dict[str, str]] = None) -> ServeConfig:
    """The settings from ``cli`` (only what was given), ``environ`` and a config file or ``settings_layer``.

    ``settings_layer`` takes the config file's place (Django's ``HYBRIDCONN_*`` settings);
    ``flags``: the option each command-line value was given with, for error messages.
    """
    environ = os.environ if environ is None else environ
    values: Dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources: Dict[str, str] = dict.fromkeys(values, "default")
    layers: List[Layer] = []
    if settings_layer is not None:
        layers.append(settings_layer)
    else:
        found = _config_layer(cli, environ)
        if found is not None:
            path, layer, warnings = found
            for warning in warnings:
                log.warning("%s", warning)
            layers.append(layer)
            values["config"], sources["config"] = path, "command line" if cli.get("config") else "default"
    layers.extend(_environment(environ))
    layers.append(("command line", {k: v for k, v in cli.items() if k in BY_NAME}))
    for where, settings in layers:
        for name, value in settings.items():
            values[name], sources[name] = value, where
    return ServeConfig.from_values(values, sources, flags)


def describe(config: ServeConfig) -> List[str]:
    """``name = value  # source`` lines, secrets hidden (``--print-config``)."""
    lines = []
    for setting in SETTINGS:
        if setting.cli_only:
            continue
        value = getattr(config, setting.name)
        shown = redact(value) if isinstance(value, str) else value
        lines.append(f"{setting.name} = {shown!r}  # {config.sources.get(setting.name, 'default')}")
    return lines
