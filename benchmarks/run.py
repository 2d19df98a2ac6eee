"""pyro4compat against real Pyro4 4.82, side by side, in one run (issue 7).

    python benchmarks/run.py [--quick] [--repeat N] [--only FIG[,FIG]] [--servertype T]
                             [--serializer S] [--duration SEC] [--json FILE] [--cpu] [--busypoll off]

Every server and every client is its own process (``worker.py``): real Pyro4 runs from a
clean environment, pyro4compat with ``PYTHONPATH=<repo>``; servers listen on 127.0.0.1
port 0. For each figure the measurements alternate (ours, Pyro4, ours, Pyro4, ...) so drift
of the machine hits both alike; the table shows medians and the pyro4compat/Pyro4 ratio
(above 1 means pyro4compat is faster). With ``--cpu`` the main table adds the client's and
the server's CPU per call (medians), and "paired cli/srv": the median over the rounds of
ours/Pyro4 CPU per call, each round's two runs back to back (below 1: pyro4compat costs less),
the steadier figure when the machine's speed drifts. ``--only connections`` runs the separate idle
connection figures (thread server, 10/100/1,000 idle proxies).

``many_clients`` (in the default run, or ``--only many_clients``) is 100 concurrent
connections: 4 client processes x 25 threads, a proxy each, calling ``echo(1)`` for a fixed
time (2 s, ``--quick`` 0.5 s, or ``--duration``) against a server with ``THREADPOOL_SIZE=160``
(both libraries). It reports calls/s and the server's CPU per call (``getrusage`` in the
server process, read at both ends of the window), for pyro4compat with busy-polling on and
off (``PYRO_BUSYPOLL_US=0`` in its server and client processes), each beside Pyro4's same
server type in the same round.

``aio`` (in the default run, or ``--only aio``) is issue 20's asyncio stack, with
``aio_bench.py``'s clients and servers: pyro4compat's ``aio.Proxy`` against its ``aio.Daemon``,
beside Pyro4 4.82's way to get the same concurrency (a thread per client, a proxy each) against
its thread or multiplex server. ``aio_tasks_N``: one ``aio.Proxy`` shared by N tasks, against N
Pyro4 threads in one process; ``aio_clients_100``: 100 ``aio.Proxy`` (one each) in 4 processes,
against 100 Pyro4 threads in 4 processes. Calls of ``add(1, 2)`` per second for the same time as
``many_clients``, after 2 s for start-up; ``--cpu`` adds the server's CPU per call.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import aio_bench  # beside this file: run.py runs as a script, so its folder is on sys.path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIBRARIES = ("pyro4compat", "Pyro4")
FIGURES = ("small_calls", "oneway", "batch", "bytes_10mb", "nested_1mb", "threads4", "connect",
           "iterator", "ns_register", "ns_lookup")
UNITS = {"bytes_10mb": "MB/s", "nested_1mb": "MB/s", "iterator": "items/s", "ns_register": "ops/s",
         "ns_lookup": "ops/s"}
EXTRA_SERIALIZERS = {"bytes_10mb": ("pickle",)}  # besides --serializer's list
# Issue 7's targets, as pyro4compat/Pyro4 ratios; None = any serializer.
TARGETS: Dict[Tuple[str, Optional[str]], float] = {
    ("small_calls", "serpent"): 3.0, ("small_calls", "marshal"): 2.5, ("oneway", None): 3.0,
    ("batch", None): 2.0, ("bytes_10mb", "serpent"): 10.0, ("bytes_10mb", "marshal"): 2.0,
    ("bytes_10mb", "pickle"): 2.0, ("threads4", None): 3.0, ("connect", None): 2.0,
    ("ns_lookup", None): 2.0,
}
# Per figure: minimum ops of one measurement (slow figures: a few ops, not a fixed time).
MIN_OPS = {"bytes_10mb": 2, "nested_1mb": 1, "batch": 2000}
CONNECTION_COUNTS = "10,100,1000"
ACTIVE_PROXIES = 4
MANY = "many_clients"
MANY_PROCESSES, MANY_THREADS, MANY_POOL = 4, 25, 160
MANY_DURATION, MANY_QUICK_DURATION = 2.0, 0.5
MANY_SETUP = 1.5        # seconds from sending the jobs to the window's start: connect + warm up
MANY_CPU_TARGET = 0.7   # issue 19: at most 0.7x Pyro4's server CPU per call (and more calls/s)
BUSYPOLL_MODES = (("on", {}), ("off", {"PYRO_BUSYPOLL_US": "0"}))  # env for pyro4compat only
OURS_ENV: Dict[str, str] = {}  # extra environment of every pyro4compat worker (--busypoll off)
AIO = "aio"
# (figure, pyro4compat's client mode, clients, client processes); Pyro4's side always uses threads
AIO_PLAN = (("aio_tasks_1", "aio-one-proxy", 1, 1), ("aio_tasks_10", "aio-one-proxy", 10, 1),
            ("aio_tasks_100", "aio-one-proxy", 100, 1), ("aio_clients_100", "aio-proxies", 100, 4))
# Seconds from launching the client processes to their window: start-up + connect. Importing
# pyro4compat.aio in 4 processes at once takes ~0.9 s on a busy 2-CPU machine; aio_bench notes it
# on stderr when a client is late all the same.
AIO_SETUP = 2.0


class Worker:
    """A child ``worker.py`` process and its JSON-lines channel."""

    def __init__(self, library: str, role: str, options: Optional[Dict[str, Any]] = None,
                 env: Optional[Dict[str, str]] = None, wait: bool = True) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_") and k != "PYTHONPATH"}
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        if library == "pyro4compat":
            environment["PYTHONPATH"] = str(REPO)
            environment.update(OURS_ENV)
        environment.update(env or {})
        self.library = library
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), library, role, json.dumps(options or {})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment, cwd=str(HERE))
        self.hello: Dict[str, Any] = self.receive(60.0) if wait else {}

    def wait_ready(self) -> None:
        if not self.hello:
            self.hello = self.receive(60.0)

    def receive(self, timeout: float) -> Dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("%s worker gave no answer (exit code %s)" % (self.library, self.proc.poll()))
        return json.loads(line)

    def send(self, job: Dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, job: Dict[str, Any], timeout: float = 300.0) -> Dict[str, Any]:
        self.send(job)
        return self.receive(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Close stdin (the worker's signal to finish), wait, kill only if it hangs."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_workers(role: str, options: Optional[Dict[str, Any]] = None) -> Dict[str, Worker]:
    """One worker per library; if one fails to start, the others are stopped."""
    workers: Dict[str, Worker] = {}
    try:
        for lib in LIBRARIES:
            workers[lib] = Worker(lib, role, options)
    except BaseException:
        for worker in workers.values():
            worker.stop()
        raise
    return workers


def server_uri(server: Worker) -> str:
    return "PYRO:bench@" + server.hello["location"]


def job_for(server: Worker, figure: str, serializer: str, duration: float,
            params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"figure": figure, "serializer": serializer, "uri": server_uri(server),
            "ns_uri": server.hello.get("ns_uri"), "server_pid": server.hello["pid"],
            "duration": duration, "min_ops": MIN_OPS.get(figure, 1), "params": params or {}}


def plan(figures: Iterable[str], serializers: List[str]) -> List[Tuple[str, str]]:
    """(figure, serializer) pairs in run order."""
    pairs = []
    for figure in figures:
        for serializer in list(serializers) + [s for s in EXTRA_SERIALIZERS.get(figure, ())
                                               if s not in serializers]:
            pairs.append((figure, serializer))
    return pairs


def rate(result: Dict[str, Any]) -> float:
    return result["ops"] * result.get("scale", 1) / result["seconds"]


def measure_main(args: argparse.Namespace, figures: List[str]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    clients = start_workers("client")
    try:
        for servertype in args.servertype:
            servers = start_workers("server", {"servertype": servertype})
            try:
                for figure, serializer in plan(figures, args.serializer):
                    rows.append(measure_figure(args, clients, servers, figure, serializer, servertype))
            finally:
                for server in servers.values():
                    server.stop()
    finally:
        for worker in clients.values():
            worker.stop()
    return rows


def measure_figure(args: argparse.Namespace, clients: Dict[str, Worker], servers: Dict[str, Worker],
                   figure: str, serializer: str, servertype: str) -> Dict[str, Any]:
    started = time.perf_counter()

    def measure_one(lib: str) -> Any:
        result = clients[lib].request(job_for(servers[lib], figure, serializer, args.duration))
        return result["error"].strip().splitlines()[-1] if "error" in result else result

    runs, errors = _alternate(args.repeat, "%s/%s/%s" % (figure, serializer, servertype), measure_one)
    row: Dict[str, Any] = {"figure": figure, "serializer": serializer, "servertype": servertype,
                           "unit": UNITS.get(figure, "calls/s"), "errors": errors}
    for lib in LIBRARIES:
        rates = [rate(r) for r in runs[lib]]
        row[lib] = {"median": statistics.median(rates) if rates else None, "runs": rates,
                    "client_us": _cpu_per_op(runs[lib], "client_cpu"),
                    "server_us": _cpu_per_op(runs[lib], "server_cpu")}
    ours, theirs = row["pyro4compat"]["median"], row["Pyro4"]["median"]
    row["ratio"] = ours / theirs if ours and theirs else None
    row["cpu_pairs"] = [_paired_ratio(runs, key) for key in ("client_cpu", "server_cpu")]
    row["target"] = TARGETS.get((figure, serializer), TARGETS.get((figure, None)))
    if not args.no_progress:
        print("  %-12s %-8s %-9s %-6s (%.1f s)" % (figure, serializer, servertype, _fmt_ratio(row["ratio"]),
                                                  time.perf_counter() - started),
              file=sys.stderr, flush=True)
    return row


def _paired_ratio(runs: Dict[str, List[Dict[str, Any]]], key: str) -> Optional[float]:
    """Median over the rounds of ours/Pyro4 CPU per op, each round's two runs taken back to back.

    Steadier than the ratio of the two medians on a machine whose speed drifts between rounds:
    each ratio compares runs made a second apart. None without paired figures.
    """
    ratios = []
    for mine, theirs in zip(runs["pyro4compat"], runs["Pyro4"]):
        if mine.get(key) and theirs.get(key):
            ratios.append((mine[key] / (mine["ops"] * mine.get("scale", 1)))
                          / (theirs[key] / (theirs["ops"] * theirs.get("scale", 1))))
    return statistics.median(ratios) if ratios else None


def _cpu_per_op(results: List[Dict[str, Any]], key: str) -> Optional[float]:
    """Median CPU µs per op (per counted unit) over the runs, None if unknown."""
    values = [r[key] * 1e6 / (r["ops"] * r.get("scale", 1)) for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def measure_connections(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    clients = start_workers("client")
    try:
        for count in args.counts:
            for rep in range(args.repeat):
                for lib in LIBRARIES:
                    server = Worker(lib, "server", {"servertype": "thread", "ns": False})
                    try:
                        job = job_for(server, "connections", args.serializer[0], args.duration,
                                      {"idle": count, "active": ACTIVE_PROXIES})
                        result = clients[lib].request(job)
                    finally:
                        server.stop()
                    result.update({"library": lib, "idle": count, "repeat": rep})
                    rows.append(result)
                    if "error" in result:
                        print("  %s connections %d failed: %s" % (lib, count, result["error"]), file=sys.stderr)
                    elif not args.no_progress:
                        print("  connections %-5d %-12s done" % (count, lib), file=sys.stderr, flush=True)
    finally:
        for worker in clients.values():
            worker.stop()
    return rows


def start_many(library: str, servertype: str, env: Dict[str, str]) -> List[Worker]:
    """A server (first) and the client processes of the many-clients figure, started in parallel."""
    workers = [Worker(library, "server", {"servertype": servertype, "ns": False,
                                          "threadpool_size": MANY_POOL}, env, wait=False)]
    try:
        workers += [Worker(library, "client", None, env, wait=False) for _ in range(MANY_PROCESSES)]
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def measure_many_once(workers: List[Worker], serializer: str, duration: float) -> Dict[str, Any]:
    """One window: every client process calls; the server's CPU is read at both ends."""
    server, clients = workers[0], workers[1:]
    start_at = time.time() + MANY_SETUP
    job = job_for(server, MANY, serializer, duration, {"threads": MANY_THREADS, "start_at": start_at})
    job["server_pid"] = None  # the server's CPU comes from its own getrusage, below
    for worker in clients:
        worker.send(job)
    time.sleep(max(0.0, start_at - time.time()))
    before = server.request({"cpu": True}, 60.0)
    time.sleep(max(0.0, start_at + duration - time.time()))
    after = server.request({"cpu": True}, 60.0)
    results = [worker.receive(60.0 + duration) for worker in clients]
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        return {"error": failed[0].strip().splitlines()[-1]}
    ops = sum(r["ops"] for r in results)
    cpu_per_second = (after["cpu"] - before["cpu"]) / (after["time"] - before["time"])
    return {"rate": ops / duration, "ops": ops,
            "server_us": cpu_per_second * duration * 1e6 / ops if ops else None,
            "client_us": sum(r["window_cpu"] for r in results) * 1e6 / ops if ops else None,
            "late": max(r["late"] for r in results)}


def measure_many(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for servertype in args.servertype:
        for mode, ours_env in BUSYPOLL_MODES:
            workers: Dict[str, List[Worker]] = {}
            try:
                for lib in LIBRARIES:
                    workers[lib] = start_many(lib, servertype, ours_env if lib == "pyro4compat" else {})
                for serializer in args.serializer:
                    rows.append(_many_row(args, workers, servertype, mode, serializer))
            finally:
                for group in workers.values():
                    for worker in group:
                        worker.stop()
    return rows


def _many_row(args: argparse.Namespace, workers: Dict[str, List[Worker]], servertype: str, mode: str,
              serializer: str) -> Dict[str, Any]:
    started = time.perf_counter()

    def measure_one(lib: str) -> Any:
        result = measure_many_once(workers[lib], serializer, args.many_duration)
        return result["error"] if "error" in result else result

    runs, errors = _alternate(args.repeat, "%s/%s/%s" % (MANY, serializer, servertype), measure_one)
    row: Dict[str, Any] = {"figure": MANY, "servertype": servertype, "serializer": serializer,
                           "busypoll": mode, "errors": errors}
    for lib in LIBRARIES:
        row[lib] = {key: _median([r[key] for r in runs[lib]]) for key in ("rate", "server_us", "client_us")}
        row[lib]["runs"] = runs[lib]
        row[lib]["late"] = max([r["late"] for r in runs[lib]], default=None)
    ours, theirs = row["pyro4compat"], row["Pyro4"]
    row["ratio"] = ours["rate"] / theirs["rate"] if ours["rate"] and theirs["rate"] else None
    row["cpu_ratio"] = (ours["server_us"] / theirs["server_us"]
                        if ours["server_us"] and theirs["server_us"] else None)
    if not args.no_progress:
        print("  %-12s %-8s %-9s busypoll %-3s %-6s cpu %-6s (%.1f s)"
              % (MANY, serializer, servertype, mode, _fmt_ratio(row["ratio"]), _fmt_ratio(row["cpu_ratio"]),
                 time.perf_counter() - started), file=sys.stderr, flush=True)
    return row


def measure_aio(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """The aio figures, per Pyro4 server type: pyro4compat's asyncio server beside that one."""
    rows: List[Dict[str, Any]] = []
    for servertype in args.servertype:
        servers: Dict[str, aio_bench.Server] = {}
        try:
            servers["pyro4compat"] = aio_bench.Server("pyro4compat", "asyncio", args.serializer[0])
            servers["Pyro4"] = aio_bench.Server("Pyro4", servertype, args.serializer[0])
            for serializer in args.serializer:
                for figure, mode, count, procs in AIO_PLAN:
                    rows.append(_aio_row(args, servers, servertype, serializer, figure, mode, count, procs))
        finally:
            for server in servers.values():
                server.stop()
    return rows


def _aio_row(args: argparse.Namespace, servers: Dict[str, aio_bench.Server], servertype: str, serializer: str,
             figure: str, mode: str, count: int, procs: int) -> Dict[str, Any]:
    started = time.perf_counter()
    modes = {"pyro4compat": mode, "Pyro4": "threads"}

    def measure_one(lib: str) -> Any:
        try:
            result = aio_bench.measure(servers[lib], lib, modes[lib], count, procs, args.many_duration,
                                       serializer, AIO_SETUP)
        except Exception as exc:  # a client process failed or hung: the row says so, the run goes on
            return "%s: %s" % (type(exc).__name__, exc)
        return result if result[0] else "RuntimeError: no call in the window"

    runs, errors = _alternate(args.repeat, "%s/%s/%s" % (figure, serializer, servertype), measure_one)
    row: Dict[str, Any] = {"figure": figure, "serializer": serializer, "servertype": "asyncio/" + servertype,
                           "unit": "calls/s", "errors": errors, "target": None, "clients": count,
                           "processes": procs, "client_modes": modes}
    for lib in LIBRARIES:
        rates = [rate for rate, _ in runs[lib]]
        row[lib] = {"median": _median(rates), "runs": rates, "client_us": None,
                    "server_us": _median([cpu for _, cpu in runs[lib]])}
    ours, theirs = row["pyro4compat"], row["Pyro4"]
    row["ratio"] = ours["median"] / theirs["median"] if ours["median"] and theirs["median"] else None
    row["cpu_ratio"] = (ours["server_us"] / theirs["server_us"]
                        if ours["server_us"] and theirs["server_us"] else None)
    if not args.no_progress:
        print("  %-15s %-8s %-16s %-6s cpu %-6s (%.1f s)"
              % (figure, serializer, row["servertype"], _fmt_ratio(row["ratio"]), _fmt_ratio(row["cpu_ratio"]),
                 time.perf_counter() - started), file=sys.stderr, flush=True)
    return row


def _alternate(repeat: int, label: str,
               measure_one: Callable[[str], Any]) -> Tuple[Dict[str, List[Any]], Dict[str, str]]:
    """``repeat`` rounds of ``measure_one(lib)`` for each library in turn, so drift hits both alike.

    ``measure_one`` returns a measurement, or the text of what failed: that library is then left
    out of the later rounds and the failure printed (the row shows it as an error).
    """
    runs: Dict[str, List[Any]] = {lib: [] for lib in LIBRARIES}
    errors: Dict[str, str] = {}
    for _ in range(repeat):
        for lib in LIBRARIES:
            if lib in errors:
                continue
            result = measure_one(lib)
            if isinstance(result, str):
                errors[lib] = result
                print("  %s %s failed: %s" % (lib, label, result), file=sys.stderr)
            else:
                runs[lib].append(result)
    return runs, errors


def _median(values: List[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "-"
    return "{:,.{}f}".format(value, digits)


def _fmt_ratio(ratio: Optional[float]) -> str:
    return "-" if ratio is None else "%.2fx" % ratio


def main_table(rows: List[Dict[str, Any]], cpu: bool) -> str:
    header = ["figure", "serializer", "server", "unit", "pyro4compat", "Pyro4", "ratio", "target"]
    if cpu:
        header += ["ours cli/srv us", "Pyro4 cli/srv us", "paired cli/srv"]
    lines = [header]
    for row in rows:
        digits = 1 if row["unit"] == "MB/s" else 0
        target = row["target"]
        verdict = "n/a" if row["ratio"] is None else ("met" if row["ratio"] >= (target or 0) else "MISSED")
        mark = "" if target is None else "%.1fx %s" % (target, verdict)
        line = [row["figure"], row["serializer"], row["servertype"], row["unit"]]
        line += ["error" if lib in row["errors"] else _fmt(row[lib]["median"], digits) for lib in LIBRARIES]
        line += [_fmt_ratio(row["ratio"]), mark]
        if cpu:
            line += ["%s/%s" % (_fmt(row[lib]["client_us"], 1), _fmt(row[lib]["server_us"], 1))
                     for lib in LIBRARIES]
            line += ["/".join(_fmt_ratio(r) for r in row.get("cpu_pairs", (None, None)))]
        lines.append(line)
    return _render(lines)


def connections_table(rows: List[Dict[str, Any]], counts: List[int]) -> str:
    header = ["idle", "library", "connected", "refused", "threads", "rss MB", "KB/idle",
              "active calls/s", "active p50 us", "active p99 us", "wake p50 us"]
    lines = [header]
    for count in counts:
        for lib in LIBRARIES:
            runs = [r for r in rows if r["idle"] == count and r["library"] == lib and "error" not in r]
            if not runs:
                if any(r["idle"] == count for r in rows):
                    lines.append([str(count), lib, "error"] + [""] * (len(header) - 3))
                continue

            def med(key: str) -> Optional[float]:
                values = [r[key] for r in runs if r.get(key) is not None]
                return statistics.median(values) if values else None
            lines.append([str(count), lib, _fmt(med("idle_connected")), _fmt(med("refused")),
                          _fmt(med("threads_after_wakes")), _fmt(med("rss_after_mb"), 1),
                          _fmt(med("kb_per_idle"), 1), _fmt(med("active_calls_per_s")),
                          _fmt(med("active_p50_us")), _fmt(med("active_p99_us")), _fmt(med("wake_p50_us"))])
    return _render(lines)


def many_table(rows: List[Dict[str, Any]]) -> str:
    header = ["server", "serializer", "busypoll", "unit", "pyro4compat", "Pyro4", "ratio",
              "ours srv us", "Pyro4 srv us", "srv cpu", "ours/Pyro4 cli us", "target"]
    lines = [header]
    for row in rows:
        ours, theirs = row["pyro4compat"], row["Pyro4"]
        if row["ratio"] is None or row["cpu_ratio"] is None:
            verdict = "n/a"
        else:
            verdict = "met" if row["ratio"] > 1 and row["cpu_ratio"] <= MANY_CPU_TARGET else "MISSED"
        lines.append([row["servertype"], row["serializer"], row["busypoll"], "calls/s"]
                     + ["error" if lib in row["errors"] else _fmt(row[lib]["rate"]) for lib in LIBRARIES]
                     + [_fmt_ratio(row["ratio"]), _fmt(ours["server_us"], 1), _fmt(theirs["server_us"], 1),
                        _fmt_ratio(row["cpu_ratio"]),
                        "%s/%s" % (_fmt(ours["client_us"], 1), _fmt(theirs["client_us"], 1)), verdict])
    return _render(lines)


def aio_table(rows: List[Dict[str, Any]], cpu: bool) -> str:
    header = ["figure", "serializer", "server", "unit", "pyro4compat", "Pyro4", "ratio"]
    if cpu:
        header += ["ours srv us", "Pyro4 srv us", "srv cpu"]
    lines = [header]
    for row in rows:
        line = [row["figure"], row["serializer"], row["servertype"], row["unit"]]
        line += ["error" if lib in row["errors"] else _fmt(row[lib]["median"]) for lib in LIBRARIES]
        line.append(_fmt_ratio(row["ratio"]))
        if cpu:
            line += [_fmt(row[lib]["server_us"], 1) for lib in LIBRARIES] + [_fmt_ratio(row["cpu_ratio"])]
        lines.append(line)
    return _render(lines)


def _render(lines: List[List[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if i < 4 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run per figure (~75 s)")
    parser.add_argument("--repeat", type=int, help="measurements per library and figure (default 3, quick 1)")
    parser.add_argument("--duration", type=float,
                        help="seconds per measurement (default 0.4, quick 0.1; %s and %s: %g, quick %g)"
                        % (MANY, AIO, MANY_DURATION, MANY_QUICK_DURATION))
    parser.add_argument("--only", help="comma-separated figures (%s, %s, %s) or 'connections'"
                        % (", ".join(FIGURES), MANY, AIO))
    parser.add_argument("--servertype", choices=("thread", "multiplex", "both"),
                        help="server type(s) to measure (default both, quick: thread)")
    parser.add_argument("--serializer", default="serpent,marshal",
                        help="comma-separated serializers (default serpent,marshal; bytes_10mb adds pickle)")
    parser.add_argument("--counts", default=CONNECTION_COUNTS,
                        help="idle proxy counts of the connections figures (default %s)" % CONNECTION_COUNTS)
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--cpu", action="store_true", help="add client/server CPU µs per op columns")
    parser.add_argument("--no-progress", action="store_true", help="no per-figure lines on stderr")
    parser.add_argument("--busypoll", choices=("on", "off"), default="on",
                        help="pyro4compat's busy-polling in the main figures (off: PYRO_BUSYPOLL_US=0 in its "
                             "processes; %s measures both anyway)" % MANY)
    args = parser.parse_args(argv)
    OURS_ENV.update(dict(BUSYPOLL_MODES)[args.busypoll])
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.many_duration = args.duration or (MANY_QUICK_DURATION if args.quick else MANY_DURATION)
    args.duration = args.duration or (0.1 if args.quick else 0.4)
    args.servertype = args.servertype or ("thread" if args.quick else "both")
    args.servertype = ["thread", "multiplex"] if args.servertype == "both" else [args.servertype]
    args.counts = [int(c) for c in args.counts.split(",") if c]
    args.serializer = [s for s in args.serializer.split(",") if s]
    only = [f for f in (args.only or "").split(",") if f]
    unknown = [f for f in only if f not in FIGURES and f not in ("connections", MANY, AIO)]
    if unknown:
        parser.error("unknown figure(s): %s" % ", ".join(unknown))
    if "connections" in only and len(only) > 1:
        parser.error("'connections' is a figure set of its own: run it alone")
    args.figures = only or list(FIGURES) + [MANY, AIO]
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    started = time.time()
    python = "Python %s" % sys.version.split()[0]
    if args.figures == ["connections"]:
        rows = measure_connections(args)
        print("Idle connections on a thread server (%d active proxies calling), %s" % (ACTIVE_PROXIES, python))
        print(connections_table(rows, args.counts))
    else:
        main_figures = [f for f in args.figures if f not in (MANY, AIO)]
        rows = measure_main(args, main_figures) if main_figures else []
        many = measure_many(args) if MANY in args.figures else []
        aio_rows = measure_aio(args) if AIO in args.figures else []
        if rows:
            print("pyro4compat vs Pyro4 4.82, medians of %d x %.2f s, %s (ratio > 1: pyro4compat faster)"
                  % (args.repeat, args.duration, python))
            print(main_table(rows, args.cpu))
        if many:
            print("%d concurrent connections (%d client processes x %d threads, echo(1)), THREADPOOL_SIZE=%d,"
                  " medians of %d x %.2f s, %s; target: ratio > 1 and srv cpu <= %.1fx"
                  % (MANY_PROCESSES * MANY_THREADS, MANY_PROCESSES, MANY_THREADS, MANY_POOL, args.repeat,
                     args.many_duration, python, MANY_CPU_TARGET))
            print(many_table(many))
        if aio_rows:
            print("asyncio (issue 20): pyro4compat's aio.Proxy -> aio.Daemon vs Pyro4 4.82's threads, a proxy each,"
                  " -> its thread/multiplex server; add(1, 2), medians of %d x %.2f s, %s (ratio > 1: pyro4compat"
                  " faster)" % (args.repeat, args.many_duration, python))
            legend = ("aio_tasks_N: one aio.Proxy, N tasks vs N Pyro4 threads, in 1 process; aio_clients_100: 100"
                      " aio.Proxy vs 100 Pyro4 threads, in 4 processes")
            print(legend + ("; srv cpu: server CPU per call, ours/Pyro4" if args.cpu else ""))
            print(aio_table(aio_rows, args.cpu))
        for row in rows + many + aio_rows:
            for lib, error in sorted(row["errors"].items()):
                print("error: %s %s/%s/%s: %s" % (lib, row["figure"], row["serializer"], row["servertype"], error))
        late = max([r[lib]["late"] or 0.0 for r in many for lib in LIBRARIES], default=0.0)
        if late > 0:
            print("note: a client process of %s was ready %.2f s after its window opened" % (MANY, late))
        rows = rows + many + aio_rows
    print("(%.0f s)" % (time.time() - started))
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv[1:], "python": python, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
