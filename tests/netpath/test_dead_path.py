"""A network path that silently drops every packet is detected and the listener reconnects.

The emulator runs in one network namespace, the listener in another, joined by a veth pair;
taking the link down drops every packet (no FIN, no RST: the emulator's kernel acknowledges
nothing, unlike an application-level stall). With unsolicited Pongs, nothing would ever
answer; ``TCP_USER_TIMEOUT`` makes the kernel give up on the unacknowledged Pong within
``ping_interval + ping_timeout``, where plain TCP would keep retransmitting for 15 minutes.
The waits below are bounded far under those 15 minutes, but they assert no timing.
"""

from __future__ import annotations

import sys
from typing import Iterator

import pytest

from tests.support.netns import VethPair, netns_unavailable
from tests.support.processes import StartProcess, child_env

UNAVAILABLE = netns_unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None,
                                reason=f"NO DEAD-PATH TEST: network namespaces unavailable here ({UNAVAILABLE})")

#: Far below the ~15 minutes TCP would retransmit without TCP_USER_TIMEOUT or a Ping's deadline.
DETECT_WITHIN = 90.0


@pytest.fixture
def veth() -> Iterator[VethPair]:
    pair = VethPair.create()
    yield pair
    pair.remove()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("keepalive", ["pong", "ping"])
def test_a_dead_path_is_detected_and_the_listener_reconnects(veth: VethPair, start_process: StartProcess,
                                                             keepalive: str) -> None:
    relay = start_process(veth.exec_args(veth.relay_ns, sys.executable, "-m", "hybridconn", "emulator",
                                         "--host", veth.relay_ip, "--port", "9350", "--idle-timeout", "0",
                                         "--allow-dev-key"),  # reachable only inside the test's namespaces
                          child_env(), program="ip", name="netns-emulator")
    cs = relay.connection_string()
    listener = start_process(
        veth.exec_args(veth.listener_ns, sys.executable, "-m", "tests.support.netpath_listener", keepalive, "2", "3"),
        child_env(cs), program="ip", name=f"netns-listener-{keepalive}", stdin_pipe=True)
    listener.wait_for("online")
    veth.cut()
    offline = listener.wait_for("offline", timeout=DETECT_WITHIN)
    if keepalive == "ping":
        assert "RelayTimeoutError" in offline, offline
    else:
        assert "ConnectionClosed" in offline, offline  # the kernel's ETIMEDOUT ended the socket
    veth.mend()
    listener.wait_for("online", timeout=DETECT_WITHIN)
    listener.close_stdin()
    assert listener.finish() == 0
