"""README's one test command runs the interop tests too (issue 19, item 2): the suite installs their Node
packages itself, and a run without node says so in its summary instead of passing quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import interop_setup
from tests.support.processes import PROCESS_TIMEOUT, REPO


def test_selection_follows_the_command_line() -> None:
    assert interop_setup.selected([], REPO)
    assert interop_setup.selected(["tests"], REPO)
    assert interop_setup.selected(["tests/interop/test_interop_http.py::test_x", "-q"], REPO)
    assert interop_setup.selected(["-x", "interop"], REPO / "tests")
    assert not interop_setup.selected(["tests/unit", "-p", "no:randomly"], REPO)


@pytest.mark.parametrize("processes", ["0", "2"])  # in one process and under pytest-xdist
def test_a_run_without_node_says_loudly_that_interop_did_not_run(tmp_path: Path, processes: str) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with this Python and nothing else: no node, no npm
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = dict(os.environ, PATH=str(bin_dir))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-n", processes,
         "tests/interop/test_interop_tokens.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if interop_setup.NOT_RUN in line]
    assert len(lines) == 1 and "tests skipped - node is not on PATH" in lines[0], result.stdout
