"""``dir(hybridconn)`` and pydoc show every public name, lazily loaded ones included (issue 19, item 11)."""

from __future__ import annotations

import pydoc
import subprocess
import sys

import hybridconn


def test_dir_lists_every_public_name_before_any_is_loaded() -> None:
    # A fresh interpreter: in this one another test may have loaded the lazy names already.
    code = "import hybridconn, json; print(json.dumps(sorted(dir(hybridconn))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    names = set(__import__("json").loads(result.stdout))
    assert set(hybridconn.__all__) <= names
    for lazy in (
        "HybridConnectionListener",
        "HybridConnectionClient",
        "RelayEmulator",
        "serve_wsgi",
        "ConnectionRequest",
    ):
        assert lazy in names


def test_response_record_is_exported() -> None:
    from hybridconn.relayed import ResponseRecord

    assert hybridconn.ResponseRecord is ResponseRecord and "ResponseRecord" in hybridconn.__all__


def test_pydoc_of_the_package_names_the_lazy_classes() -> None:
    text = pydoc.render_doc(hybridconn, renderer=pydoc.plaintext)
    assert "HybridConnectionListener" in text and "HybridConnectionClient" in text
