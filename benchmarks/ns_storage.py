"""Name-server storages side by side: memory, ``sql:`` (SQLite) and ``postgresql://``, in one run.

    python benchmarks/ns_storage.py [--repeat N] [--duration SEC] [--threads N]

Each storage gets a pyro4compat name server of its own (``python -m pyro4compat.naming -s ...``
in a child process on 127.0.0.1, port 0); PostgreSQL is a private cluster started for the run
(``tests/pgcluster.py``, with ``fsync=on`` like a real server), on the same machine. The client
(this process, pyro4compat proxies) measures lookups/s and registrations/s, one proxy per
thread; measurements alternate between the storages so drift of the machine hits all alike.
The table shows medians and the ratios to memory and to ``sql:``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pgcluster import PgCluster  # noqa: E402  (the tests' private PostgreSQL)

from pyro4compat._client.proxy import Proxy  # noqa: E402

STORAGES = ("memory", "sql", "postgresql")
FIGURES = ("lookup", "register")


def start_name_server(storage: str) -> "tuple[subprocess.Popen, str]":
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen([sys.executable, "-m", "pyro4compat.naming", "-n", "127.0.0.1", "-p", "0", "-x",
                             "-s", storage], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("URI = "):
            return proc, line.split()[2]
    raise RuntimeError("name server for %s did not start" % storage)


def rate(uri: str, figure: str, threads: int, duration: float) -> float:
    """Operations per second of ``threads`` proxies doing ``figure`` for ``duration`` seconds."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline: List[float] = []

    def work(index: int) -> None:
        with Proxy(uri) as ns:
            ns.register("bench.lookup", "PYRO:bench@127.0.0.1:1")
            barrier.wait()
            step: Callable[[int], object] = (lambda i: ns.lookup("bench.lookup")) if figure == "lookup" else \
                (lambda i: ns.register("bench.reg.%d.%d" % (index, i % 1000), "PYRO:bench@127.0.0.1:1"))
            i = 0
            while time.perf_counter() < deadline[0]:
                for _ in range(10):
                    step(i)
                    i += 1
            counts[index] = i

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    deadline.append(time.perf_counter() + duration)
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="client threads (one proxy each)")
    args = parser.parse_args(argv)
    cluster = PgCluster(fsync=True)
    procs: List[subprocess.Popen] = []
    try:
        cluster.start()
        with tempfile.TemporaryDirectory() as tmp:
            specs = {"memory": "memory", "sql": "sql:" + os.path.join(tmp, "ns.sqlite"),
                     "postgresql": cluster.create_database()}
            uris = {}
            for name in STORAGES:
                proc, uris[name] = start_name_server(specs[name])
                procs.append(proc)
            results: Dict[str, Dict[str, List[float]]] = {f: {s: [] for s in STORAGES} for f in FIGURES}
            for _ in range(args.repeat):
                for figure in FIGURES:
                    for name in STORAGES:
                        results[figure][name].append(rate(uris[name], figure, args.threads, args.duration))
            print_table(results, args)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()  # type: ignore[union-attr]
        cluster.destroy()
    return 0


def print_table(results: Dict[str, Dict[str, List[float]]], args: argparse.Namespace) -> None:
    print("name-server storages, pyro4compat, %d client thread(s), medians of %d x %.1f s, Python %s"
          % (args.threads, args.repeat, args.duration, sys.version.split()[0]))
    header = "%-9s %10s %10s %12s %12s %12s" % ("ops/s", "memory", "sql", "postgresql", "pg/memory", "pg/sql")
    print(header)
    print("-" * len(header))
    for figure in FIGURES:
        med = {name: statistics.median(values) for name, values in results[figure].items()}
        print("%-9s %10.0f %10.0f %12.0f %11.2fx %11.2fx" % (
            figure, med["memory"], med["sql"], med["postgresql"], med["postgresql"] / med["memory"],
            med["postgresql"] / med["sql"]))


if __name__ == "__main__":
    sys.exit(main())
