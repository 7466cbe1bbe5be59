"""``hybridconn emulator``'s limit options become its ``ClientLimits``: thousands of relayed
WebSockets from one machine need ``--max-connections-per-client 0``, since every socket of theirs
comes from 127.0.0.1."""

from __future__ import annotations

import argparse
import socket

from hybridconn.commands import emulator as emulator_command
from hybridconn.emulator import ClientLimits
from tests.support.processes import StartProcess, child_env, pasted


def _limits(*argv: str) -> ClientLimits:
    parser = argparse.ArgumentParser()
    emulator_command.add_arguments(parser)
    return emulator_command.limits_from(parser.parse_args(list(argv)))


def test_no_option_keeps_every_default() -> None:
    assert _limits() == ClientLimits()


def test_each_option_sets_its_limit() -> None:
    limits = _limits("--max-connections-per-client", "0", "--max-uploads-per-client", "3", "--max-request-body",
                     "1000", "--head-timeout", "5", "--body-idle-timeout", "7.5")
    assert limits == ClientLimits(max_connections_per_client=0, max_uploads_per_client=3, max_request_body=1000,
                                  head_timeout=5.0, body_idle_timeout=7.5)


def test_the_connection_cap_answers_the_next_connection_503(start_process: StartProcess) -> None:
    emulator = start_process(["-m", "hybridconn", "emulator", "--port", "0", "--max-connections-per-client", "1"],
                             child_env())
    cs = pasted(emulator.wait_for("HYBRIDCONN_CONNECTION_STRING="))
    host, port = cs.split("sb://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as held:
        with socket.create_connection((host, int(port)), timeout=30) as refused:
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = refused.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"Too many connections from this client" in answer
        held.sendall(b"GET /hc1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert held.recv(4096).startswith(b"HTTP/1.1 ")  # the one within the cap is served
