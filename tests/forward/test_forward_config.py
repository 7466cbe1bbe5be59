"""``hybridconn forward -f bridge.yml``: azbridge's YAML keys (CONFIG.md's examples), strict errors, a real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("yaml")

from hybridconn.exceptions import ConfigurationError  # noqa: E402
from hybridconn.forward.config import load_config, parse_config  # noqa: E402
from tests.support.sockets import free_port  # noqa: E402
from tests.support.tcp_echo import EchoServer, echo_roundtrip  # noqa: E402

#: azbridge CONFIG.md, example 1 (snake_case keys of the older documentation).
EXAMPLE_1 = """\
---
GatewayPorts : no
LocalForward:

  # RDP to remote machine abcxyz
  - bind_address: 127.0.10.1
    hostname: abcxyz.intra-de.example.com
    port: 3389
    relay_name: abcxyz-rdp

  # RDP to remote machine defijk
  - bind_address: 127.0.10.2
    hostname: defijk.intra-us.example.com
    port: 3389
    relay_name: defijk-rdp
"""

#: azbridge CONFIG.md, examples 2 and 3 (RemoteForward).
EXAMPLE_2 = """\
---
GatewayPorts : no
RemoteForward:
  - relay_name: abcxyz-rdp
    hostport: 3389
  - relay_name: defijk-rdp
    host: defijk.intra-us.example.com
    hostport: 3389
"""

PASCAL = """\
AzureRelayConnectionString: Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0
BindAddress: 127.0.0.5
KeepAliveInterval: 30
LocalForward:
  - RelayName: db
    Bindings:
      - BindAddress: 127.0.0.8
        BindPort: 16161
        PortName: sql1
      - BindPort: 5000U
RemoteForward:
  - RelayName: db
    Bindings:
      - PortName: sql1
        Host: host1
        HostPort: 16161
      - Host: 10.0.0.4
        HostPort: 5000U
  - RelayName: web
    Host: grafana.lan
    HostPort: 3000
    Http: true
    Insecure: yes
"""


def test_config_md_examples_become_forward_specs() -> None:
    one = parse_config(EXAMPLE_1)
    assert one.local == ["127.0.10.1:3389:abcxyz-rdp", "127.0.10.2:3389:defijk-rdp"]
    two = parse_config(EXAMPLE_2)
    assert two.remote == ["abcxyz-rdp:localhost:3389", "defijk-rdp:defijk.intra-us.example.com:3389"]


def test_pascal_case_keys_bindings_udp_and_http() -> None:
    config = parse_config(PASCAL)
    assert config.connection_string and config.connection_string.startswith("Endpoint=sb://ns.")
    assert config.local == ["127.0.0.8:16161:db/sql1", "127.0.0.5:5000U:db"]
    assert config.remote == ["db/sql1:host1:16161", "db:10.0.0.4:5000U"]
    assert config.http == ["web:http/grafana.lan:3000"] and config.insecure
    assert config.keepalive_interval == 30.0


@pytest.mark.parametrize("text, line, key", [
    ("LocalForward:\n  - RelayName: a\n    BindPort: 1\n    BindPortt: 2\n", 4, "BindPortt"),
    ("AzureRelayConnectionString: x\nRemoteForwards: []\n", 2, "RemoteForwards"),
    ("RemoteForward:\n  - RelayName: a\n    HostPort: 1\n    Bindings:\n      - Hots: b\n", 5, "Hots"),
])
def test_unknown_keys_name_the_key_and_line(text: str, line: int, key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_config(text, source="bridge.yml")
    assert f"bridge.yml, line {line}: unknown key {key!r}" in str(caught.value)


def test_other_mistakes_are_clear() -> None:
    with pytest.raises(ConfigurationError, match="needs a RelayName"):
        parse_config("LocalForward:\n  - BindPort: 22\n")
    with pytest.raises(ConfigurationError, match="needs a HostPort"):
        parse_config("RemoteForward:\n  - RelayName: x\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        parse_config("LocalForward: [\n")
    with pytest.raises(ConfigurationError, match="line 3: LocalSocket is not supported"):
        parse_config("RemoteForward:\n  - RelayName: x\n    LocalSocket: /tmp/s\n")
    with pytest.raises(ConfigurationError, match="cannot read the configuration file"):
        load_config("/nonexistent/bridge.yml")
    assert parse_config("").local == []


def test_a_config_file_drives_a_run(cs: str, echo: EchoServer, tmp_path: Path) -> None:
    port = free_port()
    bridge = tmp_path / "bridge.yml"
    bridge.write_text(f"""\
AzureRelayConnectionString: "{cs}"
LocalForward:
  - RelayName: fwd
    BindAddress: 127.0.0.1
    BindPort: {port}
RemoteForward:
  - RelayName: fwd
    Host: 127.0.0.1
    HostPort: {echo.port}
""", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "HYBRIDCONN_CONNECTION_STRING"}
    process = subprocess.Popen([sys.executable, "-m", "hybridconn", "forward", "-f", str(bridge)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env, PYTHONUNBUFFERED="1"))
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert any(b"forwarding 127.0.0.1" in line for line in lines), lines
        sent, received, count = echo_roundtrip(("127.0.0.1", port), 100_000, seed=5)
        assert count == 100_000 and sent == received
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
