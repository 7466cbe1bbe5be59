"""`hybridconn token`: the one command that prints a token, and only to stdout."""

from __future__ import annotations

import time
from typing import List, Tuple

import pytest

from hybridconn.auth import parse_sas_token, verify_sas_token
from hybridconn.cli import main

CS = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cret;EntityPath=orders"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_for_the_entity_path_verifies_with_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "token", "--connection-string", CS)
    assert code == 0 and err == ""
    token = out.strip()
    parsed = verify_sas_token(token, {"send": "s3cret"}, "http://contoso.servicebus.windows.net/orders")
    assert parsed.key_name == "send"


def test_token_for_a_named_resource_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDCONN_CONNECTION_STRING", CS)
    code, out, _ = run_cli(capsys, "token", "invoices", "--ttl", "120")
    assert code == 0
    parsed = parse_sas_token(out.strip())
    assert parsed.audience == "http://contoso.servicebus.windows.net/invoices"
    assert time.time() + 100 < parsed.expiry <= time.time() + 121


def test_token_for_a_full_uri_with_explicit_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDCONN_CONNECTION_STRING", raising=False)
    code, out, _ = run_cli(capsys, "token", "http://127.0.0.1:9350/hc1", "--key-name", "k", "--key", "v")
    assert code == 0
    verify_sas_token(out.strip(), {"k": "v"}, "http://127.0.0.1:9350/hc1")


def test_explicit_key_overrides_the_connection_string(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "token", "-c", CS, "--key-name", "other", "--key", "k2")
    assert code == 0
    verify_sas_token(out.strip(), {"other": "k2"}, "http://contoso.servicebus.windows.net/orders")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["token", "hc1", "--key-name", "k", "--key", "v"], "namespace is needed"),
        (["token", "http://x/hc1"], "no key to sign with"),
        (["token", "--ttl", "0", "-c", CS], "--ttl must be positive"),
        (["token", "-c", "Endpoint=sb://ns/;SharedAccessKeyName=k;SharedAccessKey=v"], "no EntityPath"),
        (["token", "-c", "not a connection string"], "connection string"),
    ],
)
def test_errors_are_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: List[str], fragment: str
) -> None:
    monkeypatch.delenv("HYBRIDCONN_CONNECTION_STRING", raising=False)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2  # usage: hybridconn.commands._exit.USAGE
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hybridconn token: error:"), err
    assert fragment in lines[0]
    assert "Traceback" not in err
