"""Make ``pytest`` alone run the Node interop tests, as CI does (issue 19, item 2).

Before collection, when the run includes tests/interop, node and npm are on PATH and
tests/interop/node_modules is missing, ``npm ci`` installs the peers' locked packages (once:
later runs find them). When node is absent the interop tests skip, and the terminal summary says
so in a line no one can miss. ``HYBRIDCONN_SKIP_NPM_CI=1`` turns the install off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

INTEROP_DIR = Path(__file__).resolve().parents[1] / "interop"
#: The packages the peers need (tests.support.node_peers checks the same ones).
PACKAGES = ("hyco-ws", "hyco-https")
NPM_TIMEOUT = 600.0  # seconds: a cold npm cache on a slow network
NOT_RUN = "INTEROP TESTS NOT RUN"


def installed() -> bool:
    return all((INTEROP_DIR / "node_modules" / name / "package.json").is_file() for name in PACKAGES)


def selected(args: Sequence[str], invocation_dir: Path) -> bool:
    """Whether the command line's paths include tests/interop (no paths: the whole suite)."""
    paths = [arg.split("::", 1)[0] for arg in args if not arg.startswith("-")]
    if not paths:
        paths = ["."]
    for text in paths:
        path = (invocation_dir / text).resolve()
        if not path.exists():
            continue  # an option's value, not a path
        if path == INTEROP_DIR or INTEROP_DIR in path.parents or path in INTEROP_DIR.parents:
            return True
    return False


def prepare(args: Sequence[str], invocation_dir: Path) -> Optional[str]:
    """Run ``npm ci`` if the interop tests are selected and their packages missing; a line to report, or None."""
    if installed() or os.environ.get("HYBRIDCONN_SKIP_NPM_CI") or not selected(args, invocation_dir):
        return None
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return None  # the summary reports it
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP_DIR, capture_output=True, text=True,
            timeout=NPM_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm ci in tests/interop failed: {exc}"
    if result.returncode != 0:
        tail = " ".join((result.stderr or result.stdout).split()[-40:])
        return f"npm ci in tests/interop failed ({result.returncode}): {tail}"
    peers = sys.modules.get("tests.support.node_peers")  # tests/interop/conftest.py may have imported it already
    if peers is not None:
        peers.refresh()  # type: ignore[attr-defined]
    return "npm ci: installed the Node interop peers' packages in tests/interop/node_modules"


def not_run_line(interop_items: int) -> Optional[str]:
    """The loud summary line when interop tests were collected but cannot run."""
    if interop_items == 0 or installed() and shutil.which("node"):
        return None
    from tests.support.node_peers import SKIP_REASON

    return f"{NOT_RUN}: {interop_items} tests skipped - {SKIP_REASON}"
