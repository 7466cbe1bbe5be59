"""README.rst is executed: its Python blocks run in order, its commands parse, its quickstart is CI's."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from hybridconn.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.rst"
QUICKSTART_DEMO = 'pip install -e . && hybridconn demo'
QUICKSTART_TESTS = 'pip install -e ".[test]" && pytest'


@dataclass
class Block:
    language: str  # "python", "console", "text", or "literal" for a plain ``::`` block
    line: int  # 1-based line of the block's first content line
    text: str


def read_blocks(text: str) -> List[Block]:
    """Every ``.. code-block::`` and ``::`` literal block, dedented, with where it starts."""
    lines = text.splitlines()
    blocks: List[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = re.match(r"^(\s*)\.\. code-block::\s*(\S+)\s*$", line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if not directive and not literal:
            index += 1
            continue
        indent = len(directive.group(1)) if directive else len(line) - len(line.lstrip())
        language = directive.group(2) if directive else "literal"
        index += 1
        body: List[str] = []
        start = None
        while index < len(lines):
            current = lines[index]
            if current.strip() and len(current) - len(current.lstrip()) <= indent:
                break
            if current.strip() and start is None:
                start = index + 1
            if start is not None:
                body.append(current)
            index += 1
        if body:
            blocks.append(Block(language, start or index, textwrap.dedent("\n".join(body)).rstrip() + "\n"))
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
PYTHON = [block for block in BLOCKS if block.language == "python"]

RUNNER = textwrap.dedent(
    """
    import json, sys
    blocks = json.load(sys.stdin)
    namespace = {"__name__": "readme"}
    for line, source in blocks:
        print(f"--- README.rst line {line}", flush=True)
        exec(compile(source, f"README.rst:{line}", "exec"), namespace)
    print("--- all blocks ran", flush=True)
    """
)


def test_readme_has_the_sections_it_promises() -> None:
    text = README.read_text(encoding="utf-8")
    titles = re.findall(r"^(.+)\n(=+|-+)\n", text, flags=re.M)
    for title, underline in titles:
        assert len(underline) >= len(title), f"underline too short for {title!r}"
    names = [title for title, _ in titles]
    for wanted in (
        "Quickstart",
        "Install",
        "A listener",
        "A sender",
        "WSGI: Django and Flask",
        "Cron jobs and batch scripts",
        "Jupyter notebooks",
        "The emulator",
        "Testing your code: the pytest fixture",
        "Errors",
        "Options and defaults",
        "The service's limits",
        "How it compares with Microsoft's clients",
        "Reliability",
        "Benchmarks",
    ):
        assert wanted in names
    assert "BENCHMARKS.rst" in text


def test_quickstart_is_exactly_two_commands_and_ci_runs_the_second() -> None:
    text = README.read_text(encoding="utf-8")
    quickstart = text.split("Quickstart\n----------\n", 1)[1].split("\n----", 1)[0]
    commands = [block.text.strip() for block in read_blocks(quickstart)]
    assert commands == [QUICKSTART_DEMO, QUICKSTART_TESTS]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert QUICKSTART_TESTS in ci.splitlines()


def test_every_python_block_runs_in_order() -> None:
    assert len(PYTHON) >= 8
    payload = json.dumps([[block.line, block.text] for block in PYTHON])
    env = {k: v for k, v in os.environ.items() if k != "HYBRIDCONN_CONNECTION_STRING"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER], input=payload, capture_output=True, text=True, cwd=REPO, env=env, timeout=90
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.rstrip().endswith("--- all blocks ran")


def test_the_pytest_fixture_example_passes_as_a_test_file(tmp_path: Path) -> None:
    examples = [block for block in PYTHON if "def test_" in block.text]
    assert examples, "the README shows a test using the relay fixtures"
    test_file = tmp_path / "test_readme_fixture_example.py"
    test_file.write_text("\n".join(block.text for block in examples), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(rf"\b{len(examples)} passed\b", result.stdout)


def console_commands() -> List[List[str]]:
    commands = []
    for block in BLOCKS:
        if block.language != "console":
            continue
        for line in block.text.splitlines():
            if line.startswith("$ hybridconn "):
                argv = shlex.split(line[2:], comments=True)
                commands.append(argv[:-1] if argv[-1] == "&" else argv)
    return commands


@pytest.mark.parametrize("argv", console_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_hybridconn_command_shown_parses(argv: List[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv[1:])
    assert args.command == argv[1]
