"""Every public callable of hybridconn's public names has a docstring (issue 19, item 11)."""

from __future__ import annotations

import inspect
from typing import List

import hybridconn


def undocumented() -> List[str]:
    missing = []
    for name in hybridconn.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(hybridconn, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, property):
                doc = inspect.getdoc(value)
            elif isinstance(value, (classmethod, staticmethod)) or inspect.isfunction(value):
                doc = inspect.getdoc(getattr(obj, attr))  # inherited from the base class if overridden
            else:
                continue
            if not doc:
                missing.append(f"{name}.{attr}")
    return missing


#: Known gaps, which may only shrink: hybridconn/listener.py is at the 450-line limit of
#: tests/unit/test_architecture.py, so its docstrings wait for the module to be split.
UNDOCUMENTED_YET: set = set()


def test_every_public_callable_has_a_docstring() -> None:
    missing = undocumented()
    assert [name for name in missing if name not in UNDOCUMENTED_YET] == []
    assert UNDOCUMENTED_YET <= set(missing), (
        f"documented now, drop from UNDOCUMENTED_YET: {UNDOCUMENTED_YET - set(missing)}"
    )


def test_param_fields_are_separate_lines_in_help() -> None:
    # ":param a: x :param b: y" on one line renders as one run-together paragraph in help().
    for name in ("HybridConnectionListener", "HybridConnectionClient", "RelayEmulator"):
        for line in (inspect.getdoc(getattr(hybridconn, name)) or "").splitlines():
            assert line.count(":param ") <= 1, f"{name}: {line}"


def test_every_constructor_parameter_is_documented() -> None:
    for name in ("HybridConnectionListener", "HybridConnectionClient"):
        cls = getattr(hybridconn, name)
        doc = inspect.getdoc(cls) or ""
        for parameter in list(inspect.signature(cls.__init__).parameters)[1:]:
            if (name, parameter) in PARAMS_UNDOCUMENTED_YET:
                assert f":param {parameter}:" not in doc, (
                    f"documented now: drop {parameter} from PARAMS_UNDOCUMENTED_YET"
                )
                continue
            assert f":param {parameter}:" in doc, f"{name}({parameter}=...) is not documented"


#: (class, parameter) gaps that may only shrink (listener.py is at its line limit).
PARAMS_UNDOCUMENTED_YET: set = set()
