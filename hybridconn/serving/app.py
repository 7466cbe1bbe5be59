"""Finding and importing the WSGI application named ``MODULE:APP``, the way gunicorn does.

``myproject.wsgi:application`` for Django, ``app:app`` for Flask (``:APP``
defaults to ``application``, and may be a dotted attribute path). The current
directory is importable, as it is for ``python -m``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Callable, Tuple

from ..exceptions import ConfigurationError

__all__ = ["load_app", "check_app", "split_spec"]


def split_spec(spec: str) -> Tuple[str, str]:
    """``(module, attribute path)`` of ``MODULE[:APP]``; a ConfigurationError when it is not that shape."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
        raise ConfigurationError(f"{spec!r} is not MODULE:APP (e.g. mysite.wsgi:application)")
    return module_name, attr_path or "application"


def _importable_cwd() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def check_app(spec: str) -> None:
    """Fail fast, without running the application's code, when its module cannot be found."""
    module_name, _ = split_spec(spec)
    _importable_cwd()
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    if found is None:
        raise ConfigurationError(f"cannot import {module_name!r}: No module named {module_name!r}")


def load_app(spec: str) -> Callable[..., Any]:
    """Import ``module[:attr[.attr]]`` with the current directory importable."""
    module_name, attr_path = split_spec(spec)
    _importable_cwd()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as exc:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr_path!r}") from exc
    if not callable(target):
        raise ConfigurationError(f"{spec!r} is not a WSGI application (it is not callable)")
    return target  # type: ignore[no-any-return]
