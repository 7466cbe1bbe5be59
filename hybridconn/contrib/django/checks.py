"""System checks for a project served through a relay (``manage.py check``, and before ``relayserve``).

``hybridconn.W001``: the relay's host is not in ALLOWED_HOSTS, so Django would
answer every relayed request 400 (DisallowedHost). Requests arrive with the
namespace's host (``contoso.servicebus.windows.net``; ``127.0.0.1`` on the
emulator) whether or not the relay forwards the sender's ``Host`` header.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

from django.conf import settings
from django.core import checks
from django.http.request import validate_host

__all__ = ["relay_host", "check_allowed_hosts"]


def relay_host() -> Optional[str]:
    """The host relayed requests arrive with, from HYBRIDCONN_CONNECTION_STRING (environment first)."""
    text = os.environ.get("HYBRIDCONN_CONNECTION_STRING") or getattr(settings, "HYBRIDCONN_CONNECTION_STRING", None)
    if not text:
        return None
    from ...auth import ConnectionString
    from ...exceptions import ConfigurationError

    try:
        return ConnectionString.parse(text).namespace.host
    except ConfigurationError:
        return None


@checks.register(checks.Tags.security)
def check_allowed_hosts(app_configs: Any = None, **kwargs: Any) -> List[checks.CheckMessage]:
    host = relay_host()
    if host is None or settings.DEBUG and not settings.ALLOWED_HOSTS:
        return []  # no relay configured; with DEBUG and no ALLOWED_HOSTS Django admits localhost itself
    if validate_host(host, settings.ALLOWED_HOSTS):
        return []
    return [checks.Warning(
        f"ALLOWED_HOSTS does not admit {host!r}, the host relayed requests arrive with; Django will answer "
        "them 400 (DisallowedHost).",
        hint=f"Add {host!r} (or '.servicebus.windows.net') to ALLOWED_HOSTS.",
        id="hybridconn.W001",
    )]
