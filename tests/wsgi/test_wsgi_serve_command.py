"""`hybridconn serve`: loading MODULE:APP and failing clearly (no sockets here; see test_wsgi_relay.py)."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

from hybridconn.cli import main
from hybridconn.commands.serve import load_app
from hybridconn.exceptions import ConfigurationError

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def in_tests_dir(wsgi_project: str) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(HERE)
    try:
        yield
    finally:
        os.chdir(previous)


def test_load_flask_app_by_module_and_attribute(in_tests_dir: None) -> None:
    from wsgi_flask_app import app

    assert load_app("wsgi_flask_app:app") is app


def test_load_defaults_to_application_and_follows_dotted_attributes(
    tmp_path: "os.PathLike[str]", monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "servemod_example.py").write_text(  # type: ignore[operator]
        "class Holder:\n"
        "    @staticmethod\n"
        "    def app(environ, start_response):\n"
        "        return []\n"
        "def application(environ, start_response):\n"
        "    return []\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        module_app = load_app("servemod_example")
        assert module_app.__name__ == "application"
        assert load_app("servemod_example:Holder.app").__name__ == "app"
    finally:
        sys.modules.pop("servemod_example", None)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("not a module:app", "is not MODULE:APP"),
        (":app", "is not MODULE:APP"),
        ("no_such_module_hybridconn_xyz:app", "cannot import 'no_such_module_hybridconn_xyz'"),
        ("wsgi_flask_app:missing", "has no attribute 'missing'"),
        ("wsgi_flask_app:BIG_SIZE", "not callable"),
    ],
)
def test_bad_specs_are_configuration_errors(in_tests_dir: None, spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_app(spec)


def test_cli_reports_a_bad_app_in_one_line(in_tests_dir: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "no_such_module_hybridconn_xyz:app"]) == 2  # usage
    err = capsys.readouterr().err
    assert err.startswith("hybridconn serve: error: cannot import")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_rejects_zero_workers(in_tests_dir: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "wsgi_flask_app:app", "--max-workers", "0"]) == 2  # usage
    assert "--max-workers" in capsys.readouterr().err
