"""A small real Django project served with ``manage.py relayserve`` in tests (no database).

What a relayed Django project needs: ALLOWED_HOSTS admitting the namespace's host
(``127.0.0.1`` for the emulator, ``.servicebus.windows.net`` in Azure), and the app
``hybridconn.contrib.django``. CSRF works unchanged: the browser's Origin is the
namespace's origin, which is what Django computes for the request.
"""

from __future__ import annotations

SECRET_KEY = "hybridconn-relayserve-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", ".servicebus.windows.net"]
ROOT_URLCONF = "relaysite.urls"
WSGI_APPLICATION = "relaysite.wsgi.application"
INSTALLED_APPS = ["hybridconn.contrib.django"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict = {}
TEMPLATES: list = []
USE_TZ = True
# Several applications can share one namespace (one per hybrid connection): keep each one's cookies to its path.
CSRF_COOKIE_PATH = "/hc1/"
# The hybridconn serve settings, where a config file would be.
HYBRIDCONN_THREADS = 4
HYBRIDCONN_GRACEFUL_TIMEOUT = 10
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"django.security.csrf": {"handlers": ["null"], "propagate": True}},
}
