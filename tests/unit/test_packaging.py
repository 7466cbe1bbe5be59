"""Packaging: py.typed ships, the console script runs, Python >= 3.9 is declared."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

import hybridconn

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    assert parser.read(ROOT / "setup.cfg"), "setup.cfg not found"
    return parser


def test_py_typed_in_the_installed_package() -> None:
    marker = resources.files("hybridconn") / "py.typed"
    assert marker.is_file()
    assert Path(hybridconn.__file__).parent.joinpath("py.typed").is_file()


def test_py_typed_is_declared_as_package_data() -> None:
    assert "py.typed" in _setup_cfg()["options.package_data"]["hybridconn"]


def test_py_typed_lands_in_a_build(tmp_path: Path) -> None:
    """Build the package (setuptools build_py, as a wheel build does) from a copy and look inside."""
    pytest.importorskip("setuptools", reason="this venv has no setuptools to build with (Python >= 3.12 venvs)")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "README.rst"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "hybridconn", source / "hybridconn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)],
        cwd=source, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "hybridconn" / "py.typed").is_file()
    assert (out / "hybridconn" / "protocol.py").is_file()


def test_python_requires() -> None:
    requires = _setup_cfg()["options"]["python_requires"].strip()
    assert requires == ">=3.9"
    assert metadata.metadata("hybridconn")["Requires-Python"] == ">=3.9"


def test_runtime_dependencies_and_test_extra() -> None:
    options = _setup_cfg()["options"]
    deps = {line.split(">")[0].split("=")[0].strip().lower() for line in options["install_requires"].split("\n") if line.strip()}
    assert {"websocket-client", "requests", "h11", "wsproto"} <= deps
    extras = _setup_cfg()["options.extras_require"]["test"]
    for name in ("pytest", "responses", "pytest-timeout", "hypothesis"):
        assert name in extras


def test_console_script_declared() -> None:
    scripts = _setup_cfg()["options.entry_points"]["console_scripts"]
    assert "hybridconn = hybridconn.cli:main" in scripts
    found = metadata.entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        scripts_found = list(found.select(group="console_scripts"))
    else:  # Python 3.9: a dict of group -> entry points
        scripts_found = list(found.get("console_scripts", []))  # type: ignore[attr-defined]
    entry = [e for e in scripts_found if e.name == "hybridconn"]
    assert entry and entry[0].value == "hybridconn.cli:main"


def test_hybridconn_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hybridconn", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hybridconn")
    assert "token" in result.stdout


def test_hybridconn_script_help_runs() -> None:
    script = Path(sys.executable).parent / "hybridconn"
    assert script.exists(), "the console script is not installed next to the interpreter"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: hybridconn" in result.stdout


def test_no_asyncio_in_the_library() -> None:
    checked = 0
    for path in Path(hybridconn.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        checked += 1
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)), (
                f"{path.name}:{node.lineno} uses async syntax"
            )
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "asyncio" for a in node.names), f"{path.name} imports asyncio"
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "asyncio", f"{path.name} imports asyncio"
    assert checked > 5
