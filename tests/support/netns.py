"""Two network namespaces joined by a veth pair, made (and removed) by a test.

Addresses live only inside the namespaces the test creates (``10.203.X.1``/``.2``); nothing
in the host's own namespace changes. Taking the link down makes the path between them drop
every packet silently: no FIN, no RST, as a dead network path does. Needs root and ``ip``;
:func:`netns_unavailable` says why not, for a skip with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from typing import List, Optional

__all__ = ["VethPair", "netns_unavailable"]


def _ip(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def netns_unavailable() -> Optional[str]:
    """None when namespaces can be made here; else why not."""
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"hcprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class VethPair:
    """Namespace ``relay_ns`` (address ``relay_ip``) and ``listener_ns`` (``listener_ip``), linked."""

    relay_ns: str
    listener_ns: str
    relay_ip: str
    listener_ip: str
    relay_if: str
    listener_if: str

    @classmethod
    def create(cls) -> "VethPair":
        tag = uuid.uuid4().hex[:6]
        subnet = int(tag[:2], 16)
        pair = cls(f"hcr{tag}", f"hcl{tag}", f"10.203.{subnet}.1", f"10.203.{subnet}.2", f"vr{tag}", f"vl{tag}")
        try:
            pair._setup()
        except Exception:
            pair.remove()
            raise
        return pair

    def _run(self, *args: str) -> None:
        done = _ip(*args)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def _setup(self) -> None:
        for ns in (self.relay_ns, self.listener_ns):
            self._run("netns", "add", ns)
            self._run("-n", ns, "link", "set", "lo", "up")
        # Made inside the relay namespace, one end moved: the host's namespace never holds either.
        self._run("-n", self.relay_ns, "link", "add", self.relay_if, "type", "veth", "peer", "name", self.listener_if)
        self._run("-n", self.relay_ns, "link", "set", self.listener_if, "netns", self.listener_ns)
        for ns, dev, ip in ((self.relay_ns, self.relay_if, self.relay_ip),
                            (self.listener_ns, self.listener_if, self.listener_ip)):
            self._run("-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            self._run("-n", ns, "link", "set", dev, "up")

    def exec_args(self, ns: str, *command: str) -> List[str]:
        """``ip netns exec NS COMMAND...`` as arguments after the ``ip`` program."""
        return ["netns", "exec", ns, *command]

    def cut(self) -> None:
        """Take the relay's end of the link down: every packet either way is dropped from now on."""
        self._run("-n", self.relay_ns, "link", "set", self.relay_if, "down")

    def mend(self) -> None:
        self._run("-n", self.relay_ns, "link", "set", self.relay_if, "up")

    def remove(self) -> None:
        for ns in (self.relay_ns, self.listener_ns):
            _ip("netns", "del", ns)  # deleting a namespace deletes its veth end (and so the pair)
