"""hybridconn benchmarks: relayed throughput and latency, side by side, on 127.0.0.1.

    .venv/bin/python bench/run.py            # full: median of 3 runs per figure (~10 min)
    .venv/bin/python bench/run.py --quick    # smaller counts, same table (under 2 minutes)
    .venv/bin/python bench/run.py --only ws-echo-64-binary-1,accepts --runs 1

Every figure is compared in the same run with the same application served
(bench/app.py) by: the hybridconn listener behind the relay emulator; a plain
loopback server with no relay (bench/servers.py); Microsoft's hyco-https /
hyco-ws listener (bench/node_peers/) behind the same emulator. Emulator,
listener, plain server and Node peers are separate processes, this one is
the sender, so each one's CPU is read apart (/proc/<pid>/stat). The runs of
a figure alternate between the systems, so drift on this shared machine hits
all of them alike. Prints one table and writes the results as JSON
(bench/results-quick.json or bench/results-full.json, git-ignored).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measure  # noqa: E402
from measure import PlainWS, System  # noqa: E402
from procs import BENCH_DIR, NODE, Proc, node_role, node_skip_reason, python_role  # noqa: E402

from hybridconn import HybridConnectionClient  # noqa: E402
from hybridconn.addresses import listen_url, token_audience  # noqa: E402
from hybridconn.auth import AUTH_HEADER, ConnectionString  # noqa: E402

STALL_US = 40_000  # a Nagle/delayed-ACK stall shows up as ~40 ms


class Case:
    """One line of the table."""

    def __init__(self, key: str, label: str, family: str, unit: str, run: Callable[[System, bool], Dict[str, Any]],
                 vs_plain: Optional[float] = None, vs_node: Optional[float] = None, absolute: Optional[str] = None,
                 latency: bool = True, single: bool = False, once: bool = False) -> None:
        self.key, self.label, self.family, self.unit, self.run = key, label, family, unit, run
        self.vs_plain, self.vs_node, self.absolute = vs_plain, vs_node, absolute
        self.latency, self.single, self.once = latency, single, once


def _text(size: int) -> str:
    unit = "relay \u2713 h\u00e9llo "  # multi-byte characters, so decoding is real work
    data = (unit * (size // len(unit.encode()) + 1)).encode()[:size].decode("utf-8", "ignore")
    return data + "x" * (size - len(data.encode()))


def build_cases() -> List[Case]:
    cases = [
        Case("http-small-1", "HTTP GET 13 B, 1 sender", "http", "req/s",
             lambda s, q: measure.http_requests(s, "small", 1, 500 if q else 3000), 0.6, 1.0, single=True),
        Case("http-small-16", "HTTP GET 13 B, 16 senders", "http", "req/s",
             lambda s, q: measure.http_requests(s, "small", 16, 960 if q else 4800), 0.6, 1.0),
        Case("http-1mb", "HTTP GET 1 MB response*", "http", "MB/s",
             lambda s, q: _mbps(measure.http_requests(s, "big?size=1000000", 1, 20 if q else 100, fresh=True))),
        Case("http-small-requests", "HTTP GET 13 B, requests, 1 sender", "http", "req/s",
             lambda s, q: measure.http_requests(s, "small", 1, 300 if q else 1500, client="requests"), 0.6, 1.0,
             single=True),
    ]
    for size in (64, 16384):
        for kind in ("binary", "text"):
            payload: Any = bytes(range(256)) * (size // 256) if kind == "binary" else _text(size)
            for conns in (1, 64):
                def run(s: System, quick: bool, payload: Any = payload, conns: int = conns) -> Dict[str, Any]:
                    count = (400 if conns == 1 else 1280) if quick else (3000 if conns == 1 else 6400)
                    return measure.ws_echo(s, payload, conns, count)

                label = f"WS echo {'64 B' if size == 64 else '16 kB'} {kind}, {conns} conn"
                cases.append(Case(f"ws-echo-{size}-{kind}-{conns}", label, "ws", "msg/s", run, 0.45, 1.0,
                                  single=conns == 1))
    cases += [
        Case("ws-upload", "WS upload 64 kB msgs", "ws", "MB/s",
             lambda s, q: measure.ws_upload(s, (32 if q else 256) * 2**20, 65536), 0.5, None, latency=False),
        Case("ws-download", "WS download 64 kB msgs", "ws", "MB/s",
             lambda s, q: measure.ws_download(s, (32 if q else 256) * 2**20, 65536), latency=False),
        Case("accepts", "Accepts (connect..first echo)", "ws", "conn/s",
             lambda s, q: measure.accepts(s, 150 if q else 600), absolute=">= 300/s", single=True),
        Case("idle-memory", "Idle memory, 1000 conns", "ws", "KB/conn",
             lambda s, q: measure.idle_memory(s, 1000), absolute="<= 25 KB", latency=False, once=True),
        Case("emulator-cpu-1", "Emulator CPU per HTTP GET 13 B, 1 sender", "emucpu", "us/req",
             lambda s, q: _emulator_cpu(s, 1, 500 if q else 3000), absolute="<= 250 us", latency=False),
        Case("emulator-cpu-16", "Emulator CPU per HTTP GET 13 B, 16 senders", "emucpu", "us/req",
             lambda s, q: _emulator_cpu(s, 16, 960 if q else 4800), absolute="<= 250 us", latency=False),
    ]
    for key, label, unit, target in MANY_ROWS:
        cases.append(Case(key, label, "many", unit, lambda s, q, key=key: _many(s, q, key), absolute=target,
                          latency=False, once=True))
    return cases


#: The rows of one run of measure.many_ws (multiplexed listener, max_workers=16): key, label, unit, target.
MANY_ROWS = (
    ("many-ws", "5,000 multiplexed WS at once (1,000 --quick), opened", "conn/s", "all byte-exact"),
    ("many-ws-threads", "Listener threads with them all open", "threads", "<= 22"),
    ("many-ws-memory", "Listener RSS per open multiplexed WS", "KB/conn", "<= 10 KB"),
)
MANY_COUNT = {True: 1000, False: 5000}  # --quick: 1,000; else 5,000
_many_results: Dict[bool, Dict[str, Any]] = {}


def _many(system: System, quick: bool, key: str) -> Dict[str, Any]:
    """One measure.many_ws run serves all three MANY_ROWS (the first asks, the others reuse it)."""
    if quick not in _many_results:
        _many_results[quick] = measure.many_ws(system, MANY_COUNT[quick])
    result = dict(_many_results[quick])
    if key == "many-ws-threads":
        result["rate"] = float(result["threads"])
    elif key == "many-ws-memory":
        result["rate"] = result["kb_per_conn"]
    return result


def _emulator_cpu(system: System, senders: int, count: int) -> Dict[str, Any]:
    """Emulator CPU (process time, /proc) per small relayed request, bench/profile_request.py's measure."""
    emulator = system.procs["emulator"]
    cpu0 = emulator.cpu()
    result = measure.http_requests(system, "small", senders, count)
    result["rate"] = (emulator.cpu() - cpu0) * 1e6 / result["ops"]
    return result


def _mbps(result: Dict[str, Any]) -> Dict[str, Any]:
    result["rate"] = result["bytes"] / result["elapsed"] / 1e6
    return result


# ---------------------------------------------------------------------------------- systems


class Bench:
    """Starts every process, builds the three systems, and stops them all on close()."""

    def __init__(self, with_node: bool, multiplexed: bool = False) -> None:
        self.procs: List[Proc] = []
        # --multiplexed: the listener serves WebSockets with on_message and 16 threads, not 1,100.
        self.listener_args = ["--multiplexed", "--max-workers", "16"] if multiplexed else ["--max-workers", "1100"]
        self.node_skip: Optional[str] = node_skip_reason() if with_node else "--no-node given"
        self.clients: List[HybridConnectionClient] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def _start(self) -> None:
        emulator = self._add(python_role("emulator", "emulator"))
        cs = emulator.info["cs"]
        listener = self._add(python_role("listener", "listener", "--cs", cs["py"], *self.listener_args))
        plain = self._add(python_role("plain", "plain"))
        self.systems: Dict[str, Dict[str, System]] = {"http": {}, "ws": {}, "many": {}, "emucpu": {}}
        py_client = self._client(cs["py"])
        self.systems["http"]["hybridconn"] = self._relayed_http("hybridconn", emulator, cs["py"],
                                                                {"emulator": emulator, "listener": listener})
        self.systems["emucpu"]["hybridconn"] = self.systems["http"]["hybridconn"]
        # The "many" rows: a multiplexed listener (on_message, 16 threads) behind an emulator of their
        # own (roles.py emulator --many), so its settings for 10,000 threads touch no other row.
        many_emulator = self._add(python_role("emulator-many", "emulator", "--many"))
        many_cs = many_emulator.info["cs"]["pymux"]
        mux = self._add(python_role("listener-mux", "listener", "--cs", many_cs, "--multiplexed",
                                    "--max-workers", "16"))
        mux_client = self._client(many_cs)
        self.systems["many"]["hybridconn"] = System(
            "hybridconn", ws_connect=lambda route: mux_client.connect(suffix=route, timeout=120),
            procs={"emulator": many_emulator, "listener": mux}, memory_proc=mux)
        self.systems["ws"]["hybridconn"] = System(
            "hybridconn", ws_connect=lambda route: py_client.connect(suffix=route, timeout=30),
            procs={"emulator": emulator, "listener": listener}, memory_proc=listener)
        self.systems["http"]["plain"] = System("plain", http_port=plain.info["http_port"], http_prefix="/",
                                               procs={"server": plain})
        ws_port = plain.info["ws_port"]
        self.systems["ws"]["plain"] = System(
            "plain", ws_connect=lambda route: PlainWS(f"ws://127.0.0.1:{ws_port}/{route}", 30),
            procs={"server": plain}, memory_proc=plain)
        if self.node_skip is None:
            parsed = ConnectionString.parse(cs["nodehttp"])
            keys = ["--key-name", parsed.shared_access_key_name or "", "--key", parsed.shared_access_key or ""]
            node_http = self._add(node_role("hyco-https", "http_listener.js", "--uri",
                                            listen_url(parsed.namespace, "nodehttp"), *keys))
            node_ws = self._add(node_role("hyco-ws", "ws_listener.js", "--uri",
                                          listen_url(parsed.namespace, "nodews"), *keys))
            self.systems["http"]["node"] = self._relayed_http("hyco-https", emulator, cs["nodehttp"],
                                                              {"emulator": emulator, "listener": node_http})
            ws_client = self._client(cs["nodews"])
            self.systems["ws"]["node"] = System(
                "hyco-ws", ws_connect=lambda route: ws_client.connect(suffix=route, timeout=30),
                procs={"emulator": emulator, "listener": node_ws}, memory_proc=node_ws)

    def _client(self, cs: str) -> HybridConnectionClient:
        client = HybridConnectionClient.from_connection_string(cs)
        self.clients.append(client)
        return client

    @staticmethod
    def _relayed_http(name: str, emulator: Proc, cs: str, procs: Dict[str, Proc]) -> System:
        parsed = ConnectionString.parse(cs)
        path = parsed.entity_path or ""
        token, _ = parsed.token_provider(3600).get_token(token_audience(parsed.namespace, path))
        return System(name, http_port=emulator.info["port"], http_prefix=f"/{path}/",
                      http_headers={AUTH_HEADER: token}, procs=procs)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for proc in reversed(self.procs):
            proc.close()


# ---------------------------------------------------------------------------------- running


def measure_case(case: Case, systems: Dict[str, System], runs: int, quick: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    samples: Dict[str, List[Dict[str, Any]]] = {name: [] for name in systems}
    for _ in range(1 if case.once else runs):
        for name, system in systems.items():  # alternate systems within each round
            cpu0 = {role: p.cpu() for role, p in system.procs.items()}
            own0 = time.process_time()
            result = case.run(system, quick)
            result["cpu_s"] = {role: p.cpu() - cpu0[role] for role, p in system.procs.items()}
            result["cpu_s"]["sender"] = time.process_time() - own0
            samples[name].append(result)
    for name, results in samples.items():
        if case.key == "idle-memory":
            r = results[0]
            out[name] = {"median": r["kb_per_conn"], "min": r["kb_per_conn"], "max": r["kb_per_conn"], **r}
            continue
        rates = [r["rate"] for r in results]
        lat = [x for r in results for x in r.get("lat_us", [])]
        ops = sum(r["ops"] for r in results)
        cpu_us = {role: 1e6 * sum(r["cpu_s"][role] for r in results) / ops for role in results[0]["cpu_s"]}
        out[name] = {
            "median": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": rates,
            "p50_us": measure.percentile(lat, 50) if lat else None,
            "p99_us": measure.percentile(lat, 99) if lat else None,
            "max_us": max(lat) if lat else None,
            "cpu_us_per_op": cpu_us, "ops_per_run": results[0]["ops"],
        }
    return out


def verdicts(case: Case, res: Dict[str, Any]) -> Dict[str, Any]:
    """Ratios against the targets; ``ok`` False when a target is missed."""
    ours = res.get("hybridconn", {})
    v: Dict[str, Any] = {"ok": True, "notes": []}
    for other, target, field in (("plain", case.vs_plain, "x_plain"), ("node", case.vs_node, "x_node")):
        if case.key == "idle-memory":
            break  # lower is better and Node's heap makes its RSS delta meaningless: absolute target only
        if other in res and res[other]["median"]:
            v[field] = ours["median"] / res[other]["median"]
            if target is not None and v[field] < target:
                v["ok"] = False
                v["notes"].append(f"{field} {v[field]:.2f} < {target}")
    if case.key == "accepts" and ours["median"] < 300:
        v["ok"] = False
        v["notes"].append("under 300 accepts/s")
    if case.key == "idle-memory" and ours["median"] > 25:
        v["ok"] = False
        v["notes"].append("over 25 KB per connection")
    for prefix, limit, what in (("emulator-cpu", 250, "over 250 us per request"),
                                ("many-ws-threads", 22, "over 22 threads"),
                                ("many-ws-memory", 10, "over 10 KB per connection")):
        if case.key.startswith(prefix) and ours["median"] > limit:
            v["ok"] = False
            v["notes"].append(what)
    if case.single and ours.get("p99_us") and ours["p99_us"] >= STALL_US:
        v["ok"] = False
        v["notes"].append("p99 >= 40 ms: a stall")
    return v


def _num(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def _cell(r: Optional[Dict[str, Any]]) -> str:
    if r is None:
        return "-"
    if r["min"] == r["max"]:
        return _num(r["median"])
    return f"{_num(r['median'])} ({_num(r['min'])}-{_num(r['max'])})"


def table(cases: List[Case], results: Dict[str, Dict[str, Any]], node_skip: Optional[str]) -> List[str]:
    head = ["case", "unit", "hybridconn median (min-max)", "plain loopback", "hyco-* (Node)",
            "x plain", "x hyco", "p50 / p99 ms", "CPU us/op snd/emu/lst", "hyco lst", "target"]
    rows = [head]
    for case in cases:
        res = results.get(case.key)
        if res is None:
            continue
        ours, v = res["hybridconn"], res["verdicts"]
        x_plain = f"{v['x_plain']:.2f}" + (f" (>={case.vs_plain})" if case.vs_plain else "") if "x_plain" in v else "-"
        x_node = f"{v['x_node']:.2f}" + (f" (>={case.vs_node})" if case.vs_node else "") if "x_node" in v else "-"
        lat = f"{ours['p50_us'] / 1000:.2f} / {ours['p99_us'] / 1000:.2f}" if ours.get("p50_us") else "-"
        cpu = ours.get("cpu_us_per_op")
        cpu_cell = "/".join(f"{cpu[r]:.0f}" for r in ("sender", "emulator", "listener")) if cpu else "-"
        node_cpu = (res.get("node") or {}).get("cpu_us_per_op")
        node_cell = f"{node_cpu['listener']:.0f}" if node_cpu else "-"
        goal = "ok" if v["ok"] else "MISS: " + "; ".join(v["notes"])
        if case.absolute:
            goal = f"{case.absolute}: {goal}"
        rows.append([case.label, case.unit, _cell(ours), _cell(res.get("plain")), _cell(res.get("node")),
                     x_plain, x_node, lat, cpu_cell, node_cell, goal])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    sep = "  ".join("=" * w for w in widths)
    lines = [sep, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip(), sep]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows[1:]]
    lines.append(sep)
    lines += [
        "Rates: median of the runs (min-max). x plain / x hyco: hybridconn's median over theirs (target).",
        "p50/p99: hybridconn's latency per request / round trip / accept, all runs pooled.",
        "CPU us/op: process CPU per operation (request, message, 64 kB message for upload/download, 1 MB",
        "response) of the sender (this process), the emulator and the hybridconn listener; hyco lst: the Node",
        "listener's. * 1 MB: one TCP connection per request for all three (hyco-https 1.4.5 never answers a",
        "second request routed over the rendezvous socket of a large response).",
    ]
    if node_skip:
        lines.append(f"hyco-* rows skipped: {node_skip}")
    return lines


def machine() -> Dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import websocket
    import wsproto

    node = None
    if NODE:
        node = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "websocket-client": websocket.__version__,
            "wsproto": getattr(wsproto, "__version__", "?"), "node": node}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts (under 2 minutes)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3; the median is shown)")
    parser.add_argument("--only", default="", help="comma-separated case keys (prefixes work: ws-echo)")
    parser.add_argument("--no-node", action="store_true", help="skip the hyco-https/hyco-ws rows")
    parser.add_argument("--multiplexed", action="store_true",
                        help="the hybridconn listener serves WebSockets with on_message (one reader thread)")
    parser.add_argument("--json", default=None, help="results file (default bench/results-quick|full.json)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # the "many" rows hold 5,000 sockets in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cases = build_cases()
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        cases = [c for c in cases if any(c.key.startswith(w) for w in wanted)]
    started = time.monotonic()
    bench = Bench(with_node=not args.no_node, multiplexed=args.multiplexed)
    results: Dict[str, Dict[str, Any]] = {}
    failed: Dict[str, str] = {}
    try:
        for case in cases:
            t0 = time.monotonic()
            try:
                res = measure_case(case, bench.systems[case.family], args.runs, args.quick)
            except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the others
                print(f"  {case.label}: FAILED: {exc!r:.500}", file=sys.stderr, flush=True)
                failed[case.key] = repr(exc)[:1000]
                continue
            res["verdicts"] = verdicts(case, res)
            results[case.key] = res
            ours = res["hybridconn"]
            print(f"  {case.label}: hybridconn {_cell(ours)} {case.unit} ({time.monotonic() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
    finally:
        bench.close()
    mode = "quick" if args.quick else "full"
    command = "python bench/run.py" + (" --quick" if args.quick else "") + \
        (f" --runs {args.runs}" if args.runs != 3 else "") + (f" --only {args.only}" if args.only else "")
    lines = table(cases, results, bench.node_skip)
    lines += [f"FAILED {key}: {why}" for key, why in failed.items()]
    print("\n".join(lines))
    elapsed = time.monotonic() - started
    print(f"{mode} run, {args.runs} runs per figure, {elapsed:.0f} s; {command}")
    report = {"mode": mode, "command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "elapsed_s": elapsed, "machine": machine(), "node_skipped": bench.node_skip,
              "results": results, "failed": failed, "table": lines}
    path = args.json or os.path.join(BENCH_DIR, f"results-{mode}{'-partial' if args.only else ''}.json")
    with open(path, "w") as out:
        json.dump(report, out, indent=1)
    print(f"results: {os.path.relpath(path)}")
    return 0 if not failed and all(r["verdicts"]["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
