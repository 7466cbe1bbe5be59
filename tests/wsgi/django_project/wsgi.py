"""WSGI entry point, exactly as ``django-admin startproject`` writes it.

Serve it through a relay with ``hybridconn serve django_project.wsgi:application``.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

application = get_wsgi_application()
