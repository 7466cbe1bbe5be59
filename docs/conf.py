"""Sphinx configuration: the API reference from the docstrings, the guide from README.rst.

The guide pages are cut from README.rst at build time (one page per ``---`` section), so
the README stays the one copy of the guide that PyPI, the repository and these pages show.
CI builds with ``sphinx-build -W`` (warnings are errors).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hybridconn  # noqa: E402
from hybridconn.exceptions import HybridConnectionError  # noqa: E402

project = "hybridconn"
author = "The hybridconn maintainers"
copyright = "2026, The hybridconn maintainers"  # noqa: A001 - Sphinx's name
release = hybridconn.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Third-party types in signatures that the docs do not cross-reference.
nitpicky = False
intersphinx_mapping: dict = {}
exclude_patterns = ["_build", "_generated/error_tree.rst"]
html_theme = "alabaster"
html_static_path: list = []
suppress_warnings = ["ref.python"]

GENERATED = Path(__file__).resolve().parent / "_generated"
_HEADING = re.compile(r"^(?P<title>\S.*)\n(?P<rule>-{3,})$", re.MULTILINE)
_TARGET = re.compile(r"^\.\. _[^:]+: \S+$", re.MULTILINE)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("``", "")).strip("-")[:40]


def split_readme() -> list:
    """Write one page per README section into _generated/guide/; return their names in order."""
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    targets = "\n".join(_TARGET.findall(text))
    matches = list(_HEADING.finditer(text))
    guide = GENERATED / "guide"
    guide.mkdir(parents=True, exist_ok=True)
    for old in guide.glob("*.rst"):
        old.unlink()
    intro_end = matches[0].start() if matches else len(text)
    intro = text[:intro_end].split("\n", 3)[3] if text.startswith("hybridconn\n") else text[:intro_end]
    names = []
    pages = [("overview", "Overview\n========\n\n" + intro.strip() + "\n")]
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        title = match.group("title")
        body = text[match.end():end]
        pages.append((_slug(title), f"{title}\n{'=' * max(len(title), 3)}\n{body}"))
    for position, (slug, content) in enumerate(pages):
        name = f"{position:02d}-{slug}"
        # every page gets the README's link targets: a section may use one defined elsewhere
        used = [t for t in targets.splitlines() if t[4:].split(":")[0] in content and t not in content]
        (guide / f"{name}.rst").write_text(content.rstrip() + "\n\n" + "\n".join(used) + "\n", encoding="utf-8")
        names.append(name)
    (GENERATED / "guide.rst").write_text(
        "Guide\n=====\n\nThe user guide, the same text as README.rst.\n\n.. toctree::\n   :maxdepth: 2\n\n"
        + "".join(f"   guide/{n}\n" for n in names),
        encoding="utf-8",
    )
    return names


def error_tree() -> None:
    """The exception hierarchy under HybridConnectionError, as a nested list (errors.rst includes it)."""
    lines = []

    def walk(cls: type, depth: int) -> None:
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        lines.append(f"{'  ' * depth}- :class:`~{cls.__module__}.{cls.__qualname__}`: {doc}".rstrip(": ") + "\n")
        lines.append("\n")
        for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
            if sub.__module__.startswith("hybridconn"):
                walk(sub, depth + 1)

    walk(HybridConnectionError, 0)
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "error_tree.rst").write_text("".join(lines), encoding="utf-8")


split_readme()
error_tree()
