"""``python manage.py relayserve``: serve this project's WSGI application through a hybrid connection.

The same options as ``hybridconn serve`` (``--workers``, ``--threads``,
``--graceful-timeout``, ``--access-logfile``, ...; see ``--help``); the
application is ``settings.WSGI_APPLICATION``. Settings named
``HYBRIDCONN_<SETTING>`` stand where a config file would: the command line
wins over the environment, which wins over them.
"""

from __future__ import annotations

from typing import Any, Dict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from .....commands.serve import add_arguments, serve
from .....exceptions import HybridConnectionError
from .....serving.settings import ENV_PREFIX, SETTINGS
from .....serving.sources import resolve

__all__ = ["Command", "settings_layer", "wsgi_spec"]


def wsgi_spec(dotted: str) -> str:
    """``mysite.wsgi.application`` (Django's notation) as ``mysite.wsgi:application``."""
    module, _, attribute = dotted.rpartition(".")
    return f"{module}:{attribute}" if module else dotted


def settings_layer() -> Dict[str, Any]:
    """The ``HYBRIDCONN_*`` Django settings, and the WSGI application unless one is set."""
    values = {s.name: getattr(settings, ENV_PREFIX + s.name.upper()) for s in SETTINGS
              if not s.cli_only and hasattr(settings, ENV_PREFIX + s.name.upper())}
    if "app" not in values and getattr(settings, "WSGI_APPLICATION", None):
        values["app"] = wsgi_spec(settings.WSGI_APPLICATION)
    return values


class Command(BaseCommand):
    help = "Serve this project through an Azure Relay hybrid connection (options as hybridconn serve's)."
    requires_system_checks = "__all__"  # ALLOWED_HOSTS is checked before serving

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser, with_app=False)

    def handle(self, *args: Any, **options: Any) -> None:
        given = {s.name: options[s.name] for s in SETTINGS if options.get(s.name) is not None}
        flags = options.get("serve_flags")

        def settings_now() -> Any:
            return resolve(given, settings_layer=("Django settings", settings_layer()), flags=flags)

        try:
            code = serve(settings_now(), reload=settings_now)
        except HybridConnectionError as exc:
            raise CommandError(str(exc)) from exc
        if code:
            raise CommandError(f"relayserve ended with exit code {code}")
