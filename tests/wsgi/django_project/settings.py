"""A minimal, real Django project served through the relay in tests.

No database and no installed apps: only views, URLs and the middleware a
typical project has. DEBUG is False so an exception becomes a plain 500.
"""

from __future__ import annotations

SECRET_KEY = "hybridconn-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", ".servicebus.windows.net", "testserver"]
ROOT_URLCONF = "django_project.urls"
WSGI_APPLICATION = "django_project.wsgi.application"
INSTALLED_APPS: list = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict = {}
TEMPLATES: list = []
USE_TZ = True
USE_I18N = False
APPEND_SLASH = True
# Uploads bigger than this are spooled to a temporary file, as in production.
FILE_UPLOAD_MAX_MEMORY_SIZE = 100 * 1024
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Keep Django's own error logging (django.request) but send it nowhere noisy.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"django.request": {"handlers": ["null"], "level": "ERROR", "propagate": True}},
}
