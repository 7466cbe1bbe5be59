"""Fixtures every test directory shares. Every test is checked for leaked hybridconn threads and open sockets.

Helpers live in tests/support (``from tests.support.<module> import ...``): every directory
under tests/ is a package, so pytest imports test modules by their dotted name with the
repository root on sys.path. A directory's own fixtures live in its conftest.py.

The relay emulator is the pytest plugin's (hybridconn/pytest_plugin.py, loaded by its
``pytest11`` entry point): ``relay`` is its ``relay_emulator``, and a directory or module
that needs other hybrid connections or emulator options overrides ``relay_emulator_options``,
as a user of the plugin would.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from hypothesis import settings

from hybridconn.emulator import RelayEmulator
from tests.support import interop_setup
from tests.support.measure import live_hybridconn_threads, open_sockets
from tests.support.processes import ChildProcess, StartProcess
from tests.support.proxy import ConnectProxy

# CI runs each property test on a fixed sequence of examples, so a red CI is reproducible;
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

LEAK_GRACE = 5.0  # seconds a thread or socket may take to wind down after a test
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
TESTS = Path(__file__).resolve().parent
_INTEROP_REPORT = pytest.StashKey[str]()
_INTEROP_ITEMS = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a ``hybridconn-*`` thread alive or a socket open."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    threads_before = live_hybridconn_threads()
    sockets_before = open_sockets()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    while True:
        gc.collect()
        threads = live_hybridconn_threads() - threads_before
        sockets = open_sockets() - sockets_before
        if not threads and not sockets:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = []
    if threads:
        problems.append("threads still alive: " + ", ".join(sorted(t.name for t in threads)))
    if sockets:
        problems.append(f"{len(sockets)} socket(s) left open")
    pytest.fail("leak after test: " + "; ".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the proxy variables they need; the machine's own must not route loopback traffic."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def relay(relay_emulator: RelayEmulator) -> RelayEmulator:
    """The plugin's running relay emulator (options: ``relay_emulator_options``), stopped after the test."""
    return relay_emulator


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    """A running HTTP CONNECT proxy (tests/support/proxy.py), closed after the test."""
    with ConnectProxy() as running:
        yield running


@pytest.fixture
def start_process() -> Iterator[StartProcess]:
    """``start_process(args, env, **options)``: ``python ARGS...`` in the background (see
    :class:`~tests.support.processes.ChildProcess`); every one is stopped after the test."""
    started: List[ChildProcess] = []

    def start(args: List[str], env: Optional[Dict[str, str]] = None, **options: Any) -> ChildProcess:
        process = ChildProcess(args, env, **options)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_leaks: skip the leak check (for tests of the checker itself)")
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: the controlling process has prepared the interop peers
    # Before any interop module is imported: tests.support.node_peers decides to skip at import time.
    report = interop_setup.prepare(config.args, Path(str(config.invocation_params.dir)))
    if report:
        config.stash[_INTEROP_REPORT] = report
        print(report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say loudly when the interop tests could not run: a skip must not pass for a pass."""
    report = config.stash.get(_INTEROP_REPORT, None)
    if report:
        terminalreporter.write_line(report)
    # In one process the collected interop items are counted; under pytest-xdist the controller
    # collects nothing, so the skipped interop reports the workers sent back are counted.
    skipped = [skip for skip in terminalreporter.stats.get("skipped", [])
               if str(getattr(skip, "nodeid", "")).startswith("tests/interop/")]
    line = interop_setup.not_run_line(config.stash.get(_INTEROP_ITEMS, 0) or len(skipped))
    if line:
        terminalreporter.write_sep("!", line, red=True, bold=True)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """A test directory without ``__init__.py`` would import its modules by bare basename again."""
    if file_path.suffix == ".py" and file_path.name.startswith("test_") and TESTS in file_path.parents:
        if not (file_path.parent / "__init__.py").is_file():
            raise pytest.UsageError(f"{file_path.parent} has no __init__.py: every test directory is a package")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Long ``stress`` runs only when asked for (``-m stress``); deselected, not skipped, otherwise."""
    config.stash[_INTEROP_ITEMS] = sum(1 for item in items if interop_setup.INTEROP_DIR in Path(str(item.path)).parents)
    if "stress" in (config.getoption("-m") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("stress") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
