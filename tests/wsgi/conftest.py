"""Fixtures for the WSGI bridge tests: the Django project, the Flask app, and a direct caller.

This directory is also a user's project: ``django_project`` and ``wsgi_flask_app`` are
top-level modules in it, imported the way ``hybridconn serve`` imports an app from the
directory it runs in (see ``wsgi_project``).
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Tuple
from wsgiref.validate import validator

import pytest

from hybridconn.relayed import RelayedResponse
from hybridconn.wsgi import build_environ, call_wsgi
from tests.support.wsgi_requests import EMULATOR_NAMESPACE, Caller, body_of, make_request

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
DJANGO_SETTINGS = "django_project.settings"


@pytest.fixture(scope="session")
def wsgi_project() -> Iterator[str]:
    """The project directory, importable (first on sys.path) for the rest of the session.

    ``hybridconn serve`` puts its working directory on sys.path; the in-process tests
    import the apps the same way, and Django imports ``django_project.urls`` lazily, on a
    first request, so the directory stays importable until the session ends.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(PROJECT_DIR)
        yield PROJECT_DIR


@pytest.fixture(scope="session")
def django_application(wsgi_project: str) -> Any:
    """The Django project's ``application``, with settings loaded once for this test process.

    DJANGO_SETTINGS_MODULE is set only while Django reads it and restored
    afterwards, so other tests' environment is left as it was.
    """
    from django.conf import settings

    if settings.configured and getattr(settings, "ROOT_URLCONF", None) != "django_project.urls":
        pytest.fail("Django was already configured by another test with other settings")
    previous = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = DJANGO_SETTINGS
    try:
        from django_project.wsgi import application

        assert settings.ROOT_URLCONF == "django_project.urls"
    finally:
        if previous is None:
            os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = previous
    return application


@pytest.fixture(scope="session")
def flask_application(wsgi_project: str) -> Any:
    from wsgi_flask_app import app

    return app


@pytest.fixture
def call() -> Caller:
    """``call(app, method, suffix, ...)`` -> (response, body), through wsgiref's validator."""

    def _call(
        app: Any, *args: Any, namespace: str = EMULATOR_NAMESPACE, **kwargs: Any
    ) -> Tuple[RelayedResponse, bytes]:
        request = make_request(*args, **kwargs)
        environ = build_environ(request, namespace, kwargs.get("name", "hc1"))
        response = call_wsgi(validator(app), environ)
        return response, body_of(response)

    return _call


@pytest.fixture
def wsgi_errors_records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level("DEBUG", logger="hybridconn.wsgi")
    yield caplog
