"""Bounded soak run: mixed traffic against a daemon on each server type, loopback only.

    python tests/stress/soak.py --seconds 120 [--clients 8] [--servertype thread|multiplex|both]

For ``--seconds`` per server type, ``--clients`` threads each loop over a mix of plain calls,
oneway calls, batches, remote-iterator streams, reconnects (release + call) and, now and then, a
hostile raw connection (garbage, a truncated message, a vanished client). Afterwards it prints a
summary per server type: calls done, errors, thread and fd counts before and after (after waiting
for them to settle), and the process's peak RSS. Exit status 1 if any call failed or the
daemon did not return to its idle thread/fd counts.

Not collected by pytest (no ``test_`` prefix); ``tests/integration/test_stress_scripts.py``
runs it for a few seconds as a smoke test.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyro4compat as Pyro4  # noqa: E402

HOST = "127.0.0.1"


@Pyro4.expose
class Service(object):
    def __init__(self) -> None:
        self.oneways = 0
        self.lock = threading.Lock()

    def echo(self, value: Any) -> Any:
        return value

    def add(self, a: int, b: int) -> int:
        return a + b

    @Pyro4.oneway
    def note(self, value: Any) -> None:
        with self.lock:
            self.oneways += 1

    def numbers(self, count: int) -> Any:
        return iter(range(count))


def counts() -> tuple:
    return threading.active_count(), len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def settle(limit: float = 10.0) -> tuple:
    """Counts once they stop moving for 0.2 s (or after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    previous = counts()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = counts()
        if now == previous:
            return now
        previous = now
    return previous


def hostile(port: int, n: int) -> None:
    """One of a few hostile connections; none of them may hurt anyone else."""
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock:
            kind = n % 3
            if kind == 0:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 40)
            elif kind == 1:
                sock.sendall(b"PYRO\x00\x30\x00\x01\x00")
            sock.settimeout(0.2)
            try:
                sock.recv(1024)
            except OSError:
                pass
    except OSError:
        pass


def client_loop(uri: str, port: int, stop: threading.Event, tally: Counter, problems: List[str], seed: int) -> None:
    proxy = Pyro4.Proxy(uri)
    proxy._pyroTimeout = 10
    n = seed
    try:
        while not stop.is_set():
            n += 1
            step = n % 10
            try:
                if step < 4:
                    assert proxy.echo(n) == n
                elif step == 4:
                    proxy.note(n)
                elif step == 5:
                    batch = Pyro4.batch(proxy)
                    batch.add(n, 1)
                    batch.echo("b")
                    assert list(batch()) == [n + 1, "b"]
                elif step == 6:
                    assert list(proxy.numbers(5)) == [0, 1, 2, 3, 4]
                elif step == 7:
                    proxy._pyroRelease()        # a reconnect: the next call connects anew
                    assert proxy.add(n, 2) == n + 2
                elif step == 8:
                    hostile(port, n)
                    tally["hostile"] += 1
                    continue
                else:
                    assert proxy.add(1, n) == n + 1
                tally["calls"] += 1
            except Exception as exc:     # noqa: BLE001 - counted and reported
                tally["errors"] += 1
                problems.append("%s: %s" % (type(exc).__name__, exc))
    finally:
        proxy._pyroRelease()


def soak(servertype: str, seconds: float, clients: int) -> Dict[str, Any]:
    Pyro4.config.SERVERTYPE = servertype
    Pyro4.config.THREADPOOL_SIZE_MIN = 2
    before = settle()
    daemon = Pyro4.Daemon(host=HOST, port=0)
    service = Service()
    uri = str(daemon.register(service, "service"))
    port = daemon.locationStr.rsplit(":", 1)[1]
    loop = threading.Thread(target=daemon.requestLoop, name="soak-daemon", daemon=True)
    loop.start()
    stop = threading.Event()
    tally: Counter = Counter()
    problems: List[str] = []
    workers = [threading.Thread(target=client_loop, args=(uri, int(port), stop, tally, problems, i * 1000))
               for i in range(clients)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join(30)
    elapsed = time.monotonic() - start
    daemon.shutdown()
    loop.join(10)
    after = settle()
    return {"servertype": servertype, "seconds": round(elapsed, 1), "calls": tally["calls"],
            "oneway_received": service.oneways, "hostile": tally["hostile"], "errors": tally["errors"],
            "problems": problems[:5], "threads_before": before[0], "threads_after": after[0],
            "fds_before": before[1], "fds_after": after[1],
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per server type")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--servertype", choices=["thread", "multiplex", "both"], default="both")
    args = parser.parse_args(argv)
    types = ["thread", "multiplex"] if args.servertype == "both" else [args.servertype]
    failed = False
    for servertype in types:
        result = soak(servertype, args.seconds, args.clients)
        leaked = (result["threads_after"] > result["threads_before"] or result["fds_after"] > result["fds_before"])
        failed = failed or result["errors"] > 0 or leaked
        print("soak %(servertype)s: %(seconds)ss, %(calls)d calls, %(oneway_received)d oneway received, "
              "%(hostile)d hostile connections, %(errors)d errors; threads %(threads_before)d -> "
              "%(threads_after)d, fds %(fds_before)d -> %(fds_after)d, peak RSS %(peak_rss_kb)d kB" % result)
        for problem in result["problems"]:
            print("  problem:", problem)
        if leaked:
            print("  LEAK: thread or fd count did not return to its level before the run")
    print("soak %s" % ("FAILED" if failed else "OK"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
