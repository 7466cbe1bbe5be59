"""Listener, sender and emulator CPU per relayed WebSocket echo, and where the listener's goes (py-spy).

    .venv/bin/python bench/profile_ws.py                      # 64 B binary and text, 1 and 64 connections
    .venv/bin/python bench/profile_ws.py --profile out        # also py-spy data of the listener (out-ws-*.txt)

The companion of bench/profile_request.py for WebSockets: the emulator (bench/roles.py's) and a
sender process (``HybridConnectionClient.connect``, one thread per connection, each sending a
message and waiting for its echo) are children; the listener runs here, serving ``on_connection``
with an echo loop. CPU is process time over a fixed count of round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import List, Optional

from hybridconn import ConnectionClosed, HybridConnection, HybridConnectionListener

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_request import own_cpu, proc_times  # noqa: E402

SENDER = r"""
import sys, threading
from hybridconn import HybridConnectionClient
cs, kind, size, conns, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
payload = bytes(range(256)) * (size // 256) + bytes(size % 256) if kind == "binary" else "x" * size
client = HybridConnectionClient.from_connection_string(cs)
sockets = [client.connect() for _ in range(conns)]
def run(ws, n):
    for _ in range(n):
        ws.send(payload)
        assert ws.recv(timeout=60) == payload
for ws in sockets:
    run(ws, 20)  # warm-up
print("ready", flush=True); sys.stdin.readline()
threads = [threading.Thread(target=run, args=(ws, count // conns)) for ws in sockets]
for t in threads: t.start()
for t in threads: t.join()
print("done", flush=True)
sys.stdin.readline()
for ws in sockets:
    ws.close(timeout=5)
"""


def echo(conn: HybridConnection) -> None:
    try:
        for message in conn:
            conn.send(message)
    except ConnectionClosed:
        pass
    finally:
        conn.close(timeout=2.0)


def measure(cs: str, emulator_pid: int, kind: str, size: int, conns: int, count: int,
            profile: Optional[str]) -> str:
    sender = subprocess.Popen([sys.executable, "-c", SENDER, cs, kind, str(size), str(conns), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sender.stdout is not None and sender.stdin is not None
    assert sender.stdout.readline().strip() == "ready"
    spy: Optional[subprocess.Popen] = None
    if profile:
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "1000",
                                "--gil", "--nonblocking", "--output", f"{profile}-ws-{kind}-{conns}.txt"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    lst0, emu0, snd0, t0 = own_cpu(), proc_times(emulator_pid), proc_times(sender.pid), time.perf_counter()
    sender.stdin.write("go\n")
    sender.stdin.flush()
    assert sender.stdout.readline().strip() == "done"
    lst1, emu1, snd1, t1 = own_cpu(), proc_times(emulator_pid), proc_times(sender.pid), time.perf_counter()
    sender.stdin.write("close\n")
    sender.stdin.flush()
    sender.wait(60)
    if spy is not None:
        spy.send_signal(2)
        spy.wait(30)
    done = count // conns * conns
    listener_us, sender_us = (lst1 - lst0) * 1e6 / done, (sum(snd1) - sum(snd0)) * 1e6 / done
    emulator_us = (sum(emu1) - sum(emu0)) * 1e6 / done
    return (f"{size} B {kind:6} x {conns:>2} conn: listener {listener_us:6.1f} us/msg, sender {sender_us:6.1f}, "
            f"emulator {emulator_us:6.1f}, {done / (t1 - t0):7.0f} msg/s (wall, noisy)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=6400)
    parser.add_argument("--conns", default="1,64")
    parser.add_argument("--kinds", default="binary,text")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--profile", default=None, help="py-spy output prefix")
    parser.add_argument("--ws-relay", choices=("threads", "poll"), default="threads",
                        help="the emulator's RelayEmulator(ws_relay=...)")
    args = parser.parse_args()
    command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "roles.py"), "emulator",
               "--ws-relay", args.ws_relay]
    emulator = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    try:
        assert emulator.stdout is not None
        cs = json.loads(emulator.stdout.readline())["cs"]["py"]
        listener = HybridConnectionListener.from_connection_string(cs, max_workers=128)
        listener.on_connection = echo
        with listener:
            listener.open(timeout=30)
            lines: List[str] = []
            for kind in args.kinds.split(","):
                for conns in (int(c) for c in args.conns.split(",")):
                    lines.append(measure(cs, emulator.pid, kind, args.size, conns, args.count, args.profile))
                    print(lines[-1], flush=True)
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()  # roles.py stops at EOF
        emulator.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
