"""Listener and emulator CPU per small relayed HTTP request, and where it goes (py-spy).

    .venv/bin/python bench/profile_request.py                 # CPU per request, 1 and 16 senders
    .venv/bin/python bench/profile_request.py --profile out   # also py-spy flame data (out-listener.txt ...)

The emulator (bench/roles.py's, as bench/run.py runs it: no per-request log line; or
``python -m hybridconn emulator`` with ``--cli-emulator``) and a sender process (``http.client``
keep-alive, one thread per connection) are children; the listener runs here. CPU is process
time (``/proc/<pid>/stat`` for the emulator, ``os.times()`` here) over a fixed count of
requests, so it is comparable across runs on a busy machine where wall-clock rates are not.
With ``--profile`` py-spy samples the listener (this process) and the emulator while they
serve (``--gil``: only the thread holding the GIL, i.e. where the CPU goes) and writes collapsed
stacks, one line per stack.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import List, Optional, Tuple

from hybridconn import HybridConnectionListener, RelayedResponse
from hybridconn.addresses import token_audience
from hybridconn.auth import ConnectionString

SENDER = r"""
import http.client, sys, threading
host, port, path, token, count, senders = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def run(n):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for _ in range(n):
        conn.request("GET", path, headers={"ServiceBusAuthorization": token})
        body = conn.getresponse().read()
        assert body == b"hello, world!", body
    conn.close()
run(20)  # warm-up
print("ready", flush=True); sys.stdin.readline()
threads = [threading.Thread(target=run, args=(count // senders,)) for _ in range(senders)]
for t in threads: t.start()
for t in threads: t.join()
print("done", flush=True)
"""


def proc_times(pid: int) -> Tuple[float, float]:
    """(user, system) CPU seconds of process ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def proc_cpu(pid: int) -> float:
    return sum(proc_times(pid))


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def measure(cs: str, emulator_pid: int, count: int, senders: int, profile: Optional[str]) -> str:
    parsed = ConnectionString.parse(cs)
    path = parsed.entity_path or ""
    provider = parsed.token_provider(3600)
    token = provider.get_token(token_audience(parsed.namespace, path))[0] if provider is not None else ""
    host, port = parsed.namespace.host, parsed.namespace.port or 80
    sender = subprocess.Popen([sys.executable, "-c", SENDER, host, str(port), f"/{path}/small", token,
                               str(count), str(senders)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sender.stdout is not None and sender.stdin is not None
    assert sender.stdout.readline().strip() == "ready"
    spies: List[subprocess.Popen] = []
    if profile:
        for role, pid in (("listener", os.getpid()), ("emulator", emulator_pid)):
            spies.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(pid),
                        "--format",
                        "raw",
                        "--rate",
                        "1000",
                        "--gil",
                        "--nonblocking",
                        "--output",
                        f"{profile}-{role}-{senders}.txt",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(1.0)
    lst0, emu0, t0 = own_cpu(), proc_times(emulator_pid), time.perf_counter()
    sender.stdin.write("go\n")
    sender.stdin.flush()
    assert sender.stdout.readline().strip() == "done"
    lst1, emu1, t1 = own_cpu(), proc_times(emulator_pid), time.perf_counter()
    sender.wait(30)
    for spy in spies:
        spy.send_signal(2)
        spy.wait(30)
    return (f"{senders:>2} senders x {count // senders}: listener {(lst1 - lst0) * 1e6 / count:6.1f} us/req, "
            f"emulator {(sum(emu1) - sum(emu0)) * 1e6 / count:6.1f} us/req "
            f"({(emu1[0] - emu0[0]) * 1e6 / count:.0f} user + {(emu1[1] - emu0[1]) * 1e6 / count:.0f} sys), "
            f"{count / (t1 - t0):7.0f} req/s (wall, noisy)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--senders", default="1,16")
    parser.add_argument("--profile", default=None, help="py-spy output prefix")
    parser.add_argument("--floor", action="store_true",
                        help="serve with bench/floor_listener.py (the least any CPython listener does per request) "
                             "instead of HybridConnectionListener")
    parser.add_argument("--cli-emulator", action="store_true",
                        help="measure `python -m hybridconn emulator` (it logs a line per request) instead of "
                             "bench/roles.py's emulator (no per-request log: what bench/run.py measures)")
    args = parser.parse_args()
    if args.cli_emulator:
        command = [sys.executable, "-m", "hybridconn", "emulator", "--port", "0"]
    else:
        command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "roles.py"), "emulator"]
    emulator = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    try:
        assert emulator.stdout is not None
        first = emulator.stdout.readline()
        if args.cli_emulator:
            cs = first.split("=", 1)[1].strip().strip("'")  # export HYBRIDCONN_CONNECTION_STRING='...'
        else:
            cs = json.loads(first)["cs"]["py"]
        if args.floor:
            from floor_listener import FloorListener  # bench/ is this script's directory

            floor = FloorListener(cs)
            try:
                for senders in (int(s) for s in args.senders.split(",")):
                    print("floor " + measure(cs, emulator.pid, args.count, senders, args.profile), flush=True)
            finally:
                floor.close()
            return 0
        listener = HybridConnectionListener.from_connection_string(cs, max_workers=16)
        listener.on_request = lambda request: RelayedResponse(body=b"hello, world!")
        with listener:
            for senders in (int(s) for s in args.senders.split(",")):
                print(measure(cs, emulator.pid, args.count, senders, args.profile), flush=True)
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()  # roles.py stops at EOF
        if args.cli_emulator:
            emulator.terminate()
        emulator.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
