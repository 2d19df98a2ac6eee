"""Server CPU per small call, two servers side by side: one client process alternates between them.

``run.py`` measures each library in its own window, and on a shared VM the two windows of a
round can land in different phases of the machine. Here two server processes run at once (each
either real Pyro4 4.82 or a pyro4compat checkout) and one client process (always the same
library for both) calls them in alternating bursts; each burst's server CPU comes from the
server process's per-thread run time (``/proc/<pid>/task/*/schedstat``, nanoseconds), and the
figure is the median over pairs of A's CPU per call over B's::

    python benchmarks/paired_server_cpu.py . pyro4                          # this checkout vs Pyro4
    python benchmarks/paired_server_cpu.py . /path/to/older/checkout        # before/after
    python benchmarks/paired_server_cpu.py --servertype multiplex --serializer serpent . pyro4

A server is ``pyro4`` (real Pyro4 4.82) or the path of a pyro4compat checkout. Busy-polling is
off (``PYRO_BUSYPOLL_US=0``), as across a network. Linux only (``/proc``).
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time
from typing import List, Tuple

_IMPORT = r'''
import sys
spec = sys.argv[1]
if spec == "pyro4":
    import Pyro4
else:
    sys.path.insert(0, spec)
    import pyro4compat as Pyro4
'''

SERVER = _IMPORT + r'''
import threading
Pyro4.config.SERVERTYPE = sys.argv[2]
Pyro4.config.SERIALIZERS_ACCEPTED = {"marshal", "serpent", "json"}


@Pyro4.expose
class Echo(object):
    def echo(self, value):
        return value


daemon = Pyro4.Daemon(host="127.0.0.1")
print(daemon.register(Echo(), "echo"), flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), daemon.shutdown()), daemon=True).start()
daemon.requestLoop()
'''

CLIENT = _IMPORT + r'''
Pyro4.config.SERIALIZER = sys.argv[2]
burst = int(sys.argv[3])
calls = [Pyro4.Proxy(uri).echo for uri in sys.argv[4:]]
for call in calls:
    for i in range(500):
        call(i)
for line in sys.stdin:
    call = calls[int(line)]
    for i in range(burst):
        call(i)
    print("done", flush=True)
'''


def _cpu_ns(pid: int) -> int:
    """Run time of every thread of ``pid`` so far (threads that already exited are not counted)."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass     # the thread exited meanwhile
    return total


def _spec(value: str) -> str:
    return value if value == "pyro4" else os.path.abspath(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=_spec, help="pyro4, or a pyro4compat checkout")
    parser.add_argument("b", type=_spec, help="pyro4, or a pyro4compat checkout")
    parser.add_argument("--servertype", choices=("thread", "multiplex"), default="thread")
    parser.add_argument("--serializer", default="marshal")
    parser.add_argument("--client", type=_spec, default="pyro4", help="the client's library (default pyro4)")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--burst", type=int, default=3000, help="calls per burst")
    args = parser.parse_args()
    env = dict(os.environ, PYRO_BUSYPOLL_US="0")
    servers = [subprocess.Popen([sys.executable, "-c", SERVER, spec, args.servertype], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env) for spec in (args.a, args.b)]
    try:
        uris = [server.stdout.readline().strip() for server in servers]  # type: ignore[union-attr]
        client = subprocess.Popen([sys.executable, "-c", CLIENT, args.client, args.serializer, str(args.burst)] + uris,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        per_call: Tuple[List[float], List[float]] = ([], [])
        wall: Tuple[List[float], List[float]] = ([], [])
        for pair in range(args.pairs):
            for side in ((0, 1) if pair % 2 == 0 else (1, 0)):
                pid = servers[side].pid
                cpu, start = _cpu_ns(pid), time.perf_counter()
                client.stdin.write("%d\n" % side)   # type: ignore[union-attr]
                client.stdin.flush()                 # type: ignore[union-attr]
                client.stdout.readline()             # type: ignore[union-attr]
                wall[side].append((time.perf_counter() - start) / args.burst * 1e6)
                per_call[side].append((_cpu_ns(pid) - cpu) / args.burst / 1e3)
        client.stdin.close()  # type: ignore[union-attr]
        client.wait()
    finally:
        for server in servers:
            server.stdin.close()  # type: ignore[union-attr]
            server.wait(timeout=30)
    ratios = [a / b for a, b in zip(*per_call)]
    wall_ratios = [a / b for a, b in zip(*wall)]
    print("%s server, %s, client %s, %d pairs of %d calls, busy-polling off" % (
        args.servertype, args.serializer, args.client, args.pairs, args.burst))
    for name, cpu, took in zip((args.a, args.b), per_call, wall):
        print("  %-40s server CPU %6.1f us/call, %6.1f us/call wall (medians)" % (
            name[-40:], statistics.median(cpu), statistics.median(took)))
    quartiles = statistics.quantiles(ratios, n=4)
    print("  A/B server CPU per pair: median %.3f (quartiles %.3f-%.3f, %d of %d pairs below 1); wall %.3f" % (
        statistics.median(ratios), quartiles[0], quartiles[2], sum(r < 1 for r in ratios), len(ratios),
        statistics.median(wall_ratios)))


if __name__ == "__main__":
    main()
