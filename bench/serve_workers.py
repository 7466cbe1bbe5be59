"""``hybridconn serve --workers 2`` against ``--workers 1``: small HTTP requests through the emulator.

Three processes and this one: the emulator (``hybridconn emulator``), ``hybridconn serve``
(an arbiter and its workers; bench/serve_app.py) and the senders here (``http.client``
keep-alive connections, one thread each). Each case runs ``--runs`` times, 1 and 2 workers
interleaved; the table shows the median requests per second and each side's CPU per request.

    python bench/serve_workers.py              # about 2 minutes
    python bench/serve_workers.py --quick      # about 40 s
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, ROOT)

from bench.procs import cpu_seconds  # noqa: E402
from hybridconn.addresses import token_audience  # noqa: E402
from hybridconn.auth import ConnectionString, generate_sas_token  # noqa: E402


def _start(argv: List[str], ready: str, env: Optional[Dict[str, str]] = None) -> Tuple[subprocess.Popen, str]:
    process = subprocess.Popen(argv, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if ready in line:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore
            return process, line.strip()
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"{argv} did not print {ready!r}")


def _family(pid: int) -> List[int]:
    """``pid`` and its descendants (the arbiter's workers and the forkserver, if any)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                            found.append(int(entry))
                            frontier.append(int(entry))
                except OSError:
                    continue
    return found


def _cpu(pids: List[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def _load(url: str, token: str, route: str, senders: int, count: int) -> float:
    """Seconds for ``count`` GETs of ``route`` spread over ``senders`` keep-alive connections."""
    parts = urlsplit(url)
    per = count // senders
    errors: List[str] = []
    barrier = threading.Barrier(senders + 1)

    def run() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        barrier.wait()
        try:
            for _ in range(per):
                conn.request("GET", parts.path.rstrip("/") + route, headers={"ServiceBusAuthorization": token})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(str(response.status))
        finally:
            conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(300)
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return time.perf_counter() - started


def measure(cs: str, emulator_pid: int, workers: int, route: str, senders: int, count: int) -> Dict[str, Any]:
    serve, _ = _start([sys.executable, "-m", "hybridconn", "serve", "serve_app", "--workers", str(workers),
                       "--threads", "16", "--log-level", "warning", "--connection-string", cs], "Ctrl-C to stop")
    try:
        time.sleep(1.0)  # every worker online (the line comes with the first)
        connection = ConnectionString.parse(cs)
        url = f"http://{connection.namespace.authority}/{connection.entity_path}/"
        token = generate_sas_token(token_audience(connection.namespace, connection.entity_path or ""),
                                   connection.shared_access_key_name or "", connection.shared_access_key or "", 3600)
        _load(url, token, route, senders, max(senders, count // 10))  # warm-up
        family = _family(serve.pid)
        before = (_cpu(family), cpu_seconds(emulator_pid), time.process_time())
        seconds = _load(url, token, route, senders, count)
        after = (_cpu(family), cpu_seconds(emulator_pid), time.process_time())
        done = (count // senders) * senders
        return {"rate": done / seconds, "listener_us": (after[0] - before[0]) / done * 1e6,
                "emulator_us": (after[1] - before[1]) / done * 1e6, "sender_us": (after[2] - before[2]) / done * 1e6}
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    count = 1000 if args.quick else 3000
    emulator, line = _start(
        [sys.executable, "-m", "hybridconn", "emulator", "--port", "0"], "HYBRIDCONN_CONNECTION_STRING="
    )
    cs = line.split("=", 1)[1].strip().strip("'")  # export HYBRIDCONN_CONNECTION_STRING='...'
    cases = [("13 B, no work", "/small", 16), ("13 B, 2 ms of CPU in the handler", "/work?ms=2", 16),
             ("13 B, 5 ms of CPU in the handler", "/work?ms=5", 16)]
    results: Dict[str, Dict[int, List[Dict[str, Any]]]] = {name: {1: [], 2: []} for name, _, _ in cases}
    try:
        for _ in range(runs):
            for name, route, senders in cases:
                for workers in (1, 2):
                    results[name][workers].append(measure(cs, emulator.pid, workers, route, senders, count))
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(30)
    print(f"{'case':36} {'1 worker req/s':>16} {'2 workers req/s':>16} {'x':>6}   CPU us/req (lst/emu/snd) 1w | 2w")
    for name, _, _ in cases:
        one, two = (statistics.median(r["rate"] for r in results[name][w]) for w in (1, 2))
        cpu = {w: "/".join(f"{statistics.median(r[k] for r in results[name][w]):.0f}"
                           for k in ("listener_us", "emulator_us", "sender_us")) for w in (1, 2)}
        spread = {w: f"{min(r['rate'] for r in results[name][w]):,.0f}-{max(r['rate'] for r in results[name][w]):,.0f}"
                  for w in (1, 2)}
        print(
            f"{name:36} {one:>8,.0f} ({spread[1]}) {two:>8,.0f} ({spread[2]}) {two / one:>6.2f}   {cpu[1]} | {cpu[2]}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
