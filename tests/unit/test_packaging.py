"""Packaging: the metadata a release needs, py.typed, an sdist that carries the tests, the console script."""

from __future__ import annotations

import ast
import email
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Dict, List

import pytest

import hybridconn

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13"]
# Never copied into the build: caches, virtual environments, earlier builds, node modules.
_JUNK = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", "*.egg-info", ".ci-venv*", ".venv*", "build", "dist", "_build",
    "node_modules", ".mypy_cache", ".ruff_cache", ".hypothesis", ".coverage*", "htmlcov",
)


def _pyproject() -> Dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def _project() -> Dict[str, Any]:
    return _pyproject()["project"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Build the sdist, then the wheel from that sdist (as pip would from PyPI), from a clean copy."""
    base = tmp_path_factory.mktemp("dist")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=_JUNK)
    out = base / "out"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sdists = list(out.glob("hybridconn-*.tar.gz"))
    wheels = list(out.glob("hybridconn-*-py3-none-any.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


def _sdist_names(path: Path) -> List[str]:
    with tarfile.open(path) as archive:
        return [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]


def _wheel_metadata(path: Path) -> metadata.PackageMetadata:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode("utf-8")
    return email.message_from_string(text)  # type: ignore[return-value]


def test_py_typed_in_the_installed_package() -> None:
    marker = resources.files("hybridconn") / "py.typed"
    assert marker.is_file()
    assert Path(hybridconn.__file__).parent.joinpath("py.typed").is_file()


def test_py_typed_is_declared_as_package_data() -> None:
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["hybridconn"]


def test_the_wheel_has_py_typed_the_license_and_every_module(dist: Dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as archive:
        names = set(archive.namelist())
    assert "hybridconn/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)[:20]
    shipped = {Path(*Path(n).parts) for n in names if n.startswith("hybridconn/") and n.endswith(".py")}
    source = {p.relative_to(ROOT) for p in (ROOT / "hybridconn").rglob("*.py")}
    assert source == shipped, source ^ shipped
    assert not any(n.startswith("tests/") for n in names), "the tests belong in the sdist, not the wheel"


def test_the_sdist_carries_the_tests_docs_license_and_changelog(dist: Dict[str, Path]) -> None:
    names = set(_sdist_names(dist["sdist"]))
    for required in ("LICENSE", "CHANGELOG.rst", "README.rst", "MANIFEST.in", "pyproject.toml", "setup.cfg",
                     "tests/conftest.py", "tests/unit/test_packaging.py", "tests/support/__init__.py",
                     "tests/interop/package-lock.json", "docs/architecture.rst", "hybridconn/py.typed"):
        assert required in names, f"{required} is missing from the sdist"
    tracked_tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")
                     if "node_modules" not in p.parts}
    assert tracked_tests <= names, sorted(tracked_tests - names)[:10]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "node_modules" in n]


def test_wheel_metadata_is_release_ready(dist: Dict[str, Path]) -> None:
    meta = _wheel_metadata(dist["wheel"])
    assert meta["Version"] == hybridconn.__version__
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["License-Expression"] == "MIT"
    assert meta["Author-email"] and "maintainers" in meta["Author-email"]
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Changelog", "Issues"} <= set(urls), urls
    classifiers = meta.get_all("Classifier")
    for version in SUPPORTED:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    requires = meta.get_all("Requires-Dist")
    assert "h11>=0.16" in requires


def test_the_version_is_written_in_one_place() -> None:
    project = _project()
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hybridconn.__version__"}
    assert "version" not in (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert metadata.version("hybridconn") == hybridconn.__version__
    literal = re.compile(r"""['"]\d+\.\d+\.\d+(?:[abrc.][\w.]*)?['"]""")
    holders = [p for p in (ROOT / "hybridconn").rglob("*.py") if "__version__ =" in p.read_text(encoding="utf-8")]
    assert holders == [ROOT / "hybridconn" / "__init__.py"]
    assert literal.search((ROOT / "hybridconn" / "__init__.py").read_text(encoding="utf-8"))


def test_the_changelog_has_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(hybridconn.__version__)} \(", text, re.MULTILINE), "no CHANGELOG section"
    for entry in ("--open-timeout", "drain(", "on_response", "[azure]", "-c PATH"):
        assert entry in text


def test_license_file_is_mit_as_declared() -> None:
    assert _project()["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_python_requires_and_classifiers_agree() -> None:
    project = _project()
    assert project["requires-python"] == ">=3.9"
    assert metadata.metadata("hybridconn")["Requires-Python"] == ">=3.9"
    listed = [
        c.rsplit(" ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert listed == SUPPORTED


def test_runtime_dependencies_and_test_extra() -> None:
    project = _project()
    deps = {re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower(): line for line in project["dependencies"]}
    assert set(deps) == {"websocket-client", "requests", "h11", "wsproto"}
    assert deps["h11"].startswith("h11>=0.16")
    extras = " ".join(project["optional-dependencies"]["test"])
    for name in ("pytest", "responses", "pytest-timeout", "pytest-xdist", "hypothesis", "build", "coverage"):
        assert name in extras


def test_readme_says_why_the_emulator_dependencies_are_not_an_extra() -> None:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    install = readme.split("\nInstall\n-------\n", 1)[1].split("\n----", 1)[0]
    assert "h11" in install and "wsproto" in install and "extra" in install


def test_console_script_declared() -> None:
    assert _project()["scripts"]["hybridconn"] == "hybridconn.cli:main"
    assert _project()["entry-points"]["pytest11"]["hybridconn"] == "hybridconn.pytest_plugin"
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
