"""The Django app: registers the system checks of :mod:`.checks`."""

from __future__ import annotations

from django.apps import AppConfig


class HybridConnConfig(AppConfig):
    name = "hybridconn.contrib.django"
    label = "hybridconn"
    verbose_name = "Azure Relay Hybrid Connections"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registering the checks is the import's effect
