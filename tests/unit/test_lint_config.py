"""The release checks' settings: ruff held to Python 3.9, mypy strict, coverage configured (CI runs the tools)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> Dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]


def test_ruff_targets_the_oldest_supported_python() -> None:
    ruff = _tool()["ruff"]
    assert ruff["target-version"] == "py39"
    selected = set(ruff["lint"]["select"])
    assert {"F", "E", "W", "B", "UP", "T20", "TID251"} <= selected
    assert "asyncio" in ruff["lint"]["flake8-tidy-imports"]["banned-api"]


def test_print_is_allowed_only_in_programs_that_talk_to_a_terminal() -> None:
    ignores = _tool()["ruff"]["lint"]["per-file-ignores"]
    library = [path for path, rules in ignores.items() if path.startswith("hybridconn/") and "T20" in rules]
    assert sorted(library) == ["hybridconn/cli.py", "hybridconn/commands/**"]


def test_ci_runs_every_release_check() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for step in (
        "ruff check",
        "mypy --strict hybridconn",
        "pyright --verifytypes hybridconn",
        "sphinx-build",
        "-W",
        "coverage report",
        "COVERAGE_PROCESS_START",
        'pip install -e ".[test]" && pytest',
    ):
        assert step in script, f".ci/run does not run {step!r}"


def test_coverage_measures_subprocesses_and_has_a_floor() -> None:
    coverage = _tool()["coverage"]
    assert coverage["run"]["source"] == ["hybridconn"]
    assert coverage["run"]["parallel"] is True
    assert {"_exit", "subprocess"} <= set(coverage["run"]["patch"])
    assert coverage["report"]["fail_under"] >= 85
