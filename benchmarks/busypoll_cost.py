"""What busy-polling costs the rest of a serving process: a CPU-bound thread beside a daemon.

A server process runs a pyro4compat daemon (thread or multiplex server) in one thread and, in
its main thread, a pure-Python loop that counts iterations for ``--seconds``. Another process
calls ``add(1, 2)`` on the daemon, either paced (``--rate`` calls/s) or flat out. Each setting
runs with ``config.BUSYPOLL_US`` at 200 (the default) and at 0, rounds interleaved, and the
table gives the median (min-max) of the counting thread's iterations per second (and the
median ratio of "on" to "off" from the same round), the counting thread's share of the
process's CPU time, the calls served per second, and the process's CPU time per call outside
the counting thread (the daemon's work, spins included). A ``none`` row is the same process with
no daemon at all: what the counting thread does alone.

The calling process never busy-polls (``BUSYPOLL_US = 0`` there), so only the server's setting
differs between rows. Usage, from the repository root::

    python benchmarks/busypoll_cost.py [--rounds 3] [--seconds 4] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)   # this checkout's pyro4compat, whatever is installed

import pyro4compat  # noqa: E402  (after the path is set)
from pyro4compat.configuration import config  # noqa: E402

LOADS = ("paced", "flat-out")


@pyro4compat.expose
class Adder(object):
    def __init__(self) -> None:
        self.calls = 0

    def add(self, a: int, b: int) -> int:
        self.calls += 1
        return a + b


def count_for(seconds: float) -> Tuple[int, float]:
    """Pure-Python work holding the GIL: iterations done in ``seconds``, and this thread's CPU seconds."""
    count = 0
    clock = time.perf_counter
    cpu = time.thread_time()
    deadline = clock() + seconds
    while clock() < deadline:
        for _ in range(1000):
            count += 1
    return count, time.thread_time() - cpu


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def serve_and_count(servertype: str, busypoll_us: float, load: Optional[str], seconds: float,
                    rate: float) -> Dict[str, float]:
    """One measurement in this process; ``load`` None runs the counting thread with no daemon."""
    if load is None:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        return _result(count_for(seconds), 0, started, cpu)
    config.SERVERTYPE = servertype
    config.BUSYPOLL_US = busypoll_us
    daemon = pyro4compat.Daemon(host="127.0.0.1")
    adder = Adder()
    uri = daemon.register(adder, "adder")
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    caller = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--call", str(uri),
                               "--rate", str(rate if load == "paced" else 0)],
                              stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert caller.stdout is not None and caller.stdout.readline().strip() == "ready"
        time.sleep(0.5)      # let the adaptive spin settle on the load
        calls = adder.calls
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        counted = count_for(seconds)
        return _result(counted, adder.calls - calls, started, cpu)
    finally:
        caller.kill()
        caller.wait()
        daemon.shutdown()
        loop.join(10)
        daemon.close()


def _result(counted: Tuple[int, float], calls: int, started: float, cpu: Any) -> Dict[str, float]:
    """Rates per wall second, and how the process's CPU split between the counting thread and the rest.

    The split does not depend on how much CPU other processes of the machine took meanwhile:
    the share of the process's CPU the counting thread got is what busy-polling could take away.
    """
    wall = time.perf_counter() - started
    now = resource.getrusage(resource.RUSAGE_SELF)
    used = (now.ru_utime - cpu.ru_utime) + (now.ru_stime - cpu.ru_stime)
    count, counting_cpu = counted
    return {"iterations_per_s": count / wall, "calls_per_s": calls / wall,
            "counting_share": 100.0 * counting_cpu / used,
            "us_per_call": 1e6 * (used - counting_cpu) / calls if calls else 0.0}


def call_forever(uri: str, rate: float) -> None:
    """The load: ``add(1, 2)`` at ``rate`` calls/s (0: as fast as one proxy goes) until killed."""
    config.BUSYPOLL_US = 0
    proxy = pyro4compat.Proxy(uri)
    for _ in range(50):
        proxy.add(1, 2)
    print("ready", flush=True)
    clock = time.perf_counter
    interval = 1.0 / rate if rate else 0.0
    due = clock()
    while True:
        proxy.add(1, 2)
        if interval:
            due += interval
            delay = due - clock()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                due = clock()    # fell behind (a stalled process): no burst to catch up


def measure(servertype: str, busypoll_us: float, load: Optional[str], seconds: float, rate: float) -> Dict[str, float]:
    """One measurement in a fresh process, so no run inherits another's threads or allocator state."""
    command = [sys.executable, os.path.abspath(__file__), "--one", json.dumps(
        {"servertype": servertype, "busypoll_us": busypoll_us, "load": load, "seconds": seconds, "rate": rate})]
    out = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=seconds + 60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: List[float], scale: float, digits: int) -> str:
    values = [value / scale for value in values]
    return "%.*f (%.*f-%.*f)" % (digits, statistics.median(values), digits, min(values), digits, max(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="calls/s of the paced load")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--call", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.call:
        call_forever(args.call, args.rate)
        return
    if args.one:
        print(json.dumps(serve_and_count(**json.loads(args.one))))
        return
    settings = [("none", 0.0, None)] + [(servertype, busypoll, load) for load in LOADS
                                         for servertype in ("thread", "multiplex") for busypoll in (200.0, 0.0)]
    results: Dict[Any, List[Dict[str, float]]] = {setting: [] for setting in settings}
    for number in range(args.rounds):
        for setting in settings:
            servertype, busypoll, load = setting
            results[setting].append(measure(servertype, busypoll, load, args.seconds, args.rate))
        print("round %d of %d done" % (number + 1, args.rounds), file=sys.stderr)
    print("%-9s %-8s %-8s %-21s %-6s %-18s %-18s %s" % (
        "server", "load", "BUSYPOLL", "counting thread M/s", "on/off", "its CPU share %", "calls/s served",
        "other CPU us/call"))
    for setting in settings:
        servertype, busypoll, load = setting
        runs = results[setting]
        label = "-" if load is None else ("%d/s" % args.rate if load == "paced" else load)
        paired = "-"
        if busypoll:    # each round ran "on" and "off" one after the other: their ratio drifts least
            offs = results[(servertype, 0.0, load)]
            paired = "%.2f" % statistics.median(
                on["iterations_per_s"] / off["iterations_per_s"] for on, off in zip(runs, offs))
        print("%-9s %-8s %-8s %-21s %-6s %-18s %-18s %s" % (
            servertype, label, "-" if load is None else "%d" % busypoll,
            spread([run["iterations_per_s"] for run in runs], 1e6, 1), paired,
            spread([run["counting_share"] for run in runs], 1.0, 0),
            spread([run["calls_per_s"] for run in runs], 1.0, 0),
            "-" if load is None else spread([run["us_per_call"] for run in runs], 1.0, 0)))

if __name__ == "__main__":
    main()
