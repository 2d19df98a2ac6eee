"""asyncio benchmarks (issue 20): pyro4compat.aio beside the thread and multiplex servers and Pyro4 4.82.

    python benchmarks/aio_bench.py [--duration SEC] [--serializer S] [--clients N] [--procs P]
                                   [--only a|b] [--servers NAME,...] [--repeat R]

(a) **one aio.Proxy, 1 / 10 / 100 concurrent tasks**, against every server type: pyro4compat's
    thread, multiplex and asyncio servers and Pyro4 4.82's thread and multiplex servers. Beside
    it, Pyro4 4.82's client with as many threads, each with its own proxy (Pyro4's way to get
    concurrency), against the same server.
(b) **N concurrent clients** (default 100, spread over P client processes) against pyro4compat's
    asyncio, thread and multiplex servers (clients: ``aio.Proxy`` tasks, one proxy each) and
    against Pyro4 4.82's thread and multiplex servers (clients: Pyro4 proxies in threads):
    calls/s and the server's CPU per call. ``--servers`` picks rows of (b) by name
    (``asyncio``, ``thread``, ``multiplex``, ``thread-threads``, ``multiplex-threads``,
    ``Pyro4-thread``, ``Pyro4-multiplex``), ``--repeat`` runs those rows that many times in turn
    and, when both ``asyncio`` and ``multiplex`` are among them, prints each round's asyncio /
    multiplex ratios and their medians: compare servers within one run, as load from other
    processes on the machine shifts the absolute figures between runs.

Every server and client is its own process (``python aio_bench.py server|client ...``); real
Pyro4 runs from a clean environment, pyro4compat with ``PYTHONPATH=<repo>``. Each client calls
``add(1, 2)`` in a loop for ``--duration`` seconds. Server CPU comes from ``/proc/<pid>/stat``.
``THREADPOOL_SIZE`` is 160 on both libraries, so 100 connections never queue for a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POOL = "160"


def cpu_of(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(library: str, serializer: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_") and k != "PYTHONPATH"}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYRO_THREADPOOL_SIZE=POOL, PYRO_SERIALIZER=serializer,
               PYRO_SERIALIZERS_ACCEPTED="serpent,marshal,json,pickle")
    if library == "pyro4compat":
        env["PYTHONPATH"] = str(REPO)
    return env


# --- the child processes ----------------------------------------------------------------------------

def serve(library: str, servertype: str) -> None:
    sys.path.insert(0, str(HERE))
    import service
    if library == "Pyro4":
        import warnings
        warnings.simplefilter("ignore")
        import Pyro4 as pyro
    else:
        import pyro4compat as pyro
        from pyro4compat import aio
    if servertype == "asyncio":
        daemon = aio.Daemon(host="127.0.0.1")
    else:
        pyro.config.SERVERTYPE = servertype
        daemon = pyro.Daemon(host="127.0.0.1")
    uri = daemon.register(service.build(pyro)(), "bench")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    print(json.dumps({"uri": str(uri), "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    os._exit(0)


def client(library: str, mode: str, uri: str, count: int, duration: float, go_at: float) -> None:
    """Call ``add(1, 2)`` from ``count`` tasks or threads until ``go_at + duration``; print the count.

    Also printed: ``late``, how many seconds after ``go_at`` the last proxy was bound (0 if in time).
    A failed call fails the process (exit code 1), even in a thread.
    """
    if mode == "threads":
        if library == "Pyro4":
            import warnings
            warnings.simplefilter("ignore")
            import Pyro4 as pyro
        else:
            import pyro4compat as pyro
        done, bound, failed = [0] * count, [0.0] * count, []

        def loop(index: int) -> None:
            try:
                with pyro.Proxy(uri) as proxy:
                    proxy._pyroBind()
                    bound[index] = time.time()
                    wait_until(go_at)
                    end, calls = go_at + duration, 0
                    while time.time() < end:
                        proxy.add(1, 2)
                        calls += 1
                    done[index] = calls
            except BaseException:
                failed.append(index)
                raise
        threads = [threading.Thread(target=loop, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failed:
            raise RuntimeError("%d of %d client threads failed" % (len(failed), count))
        print(json.dumps({"calls": sum(done), "late": max(max(bound) - go_at, 0.0)}), flush=True)
        return
    from pyro4compat import aio

    async def main() -> Dict[str, float]:
        proxies = [aio.Proxy(uri) for _ in range(count if mode == "aio-proxies" else 1)]
        for proxy in proxies:
            await proxy._pyroBind()
        late = max(time.time() - go_at, 0.0)
        await asyncio.sleep(max(go_at - time.time(), 0))
        end = go_at + duration

        async def loop(proxy: Any) -> int:
            calls = 0
            while time.time() < end:
                await proxy.add(1, 2)
                calls += 1
            return calls
        counts = await asyncio.gather(*[loop(proxies[n % len(proxies)]) for n in range(count)])
        for proxy in proxies:
            await proxy._pyroReleaseAndWait()
        return {"calls": sum(counts), "late": late}
    print(json.dumps(asyncio.run(main())), flush=True)


def wait_until(moment: float) -> None:
    time.sleep(max(moment - time.time(), 0))


# --- the orchestrator ---------------------------------------------------------------------------------

class Server:
    """A server child process; if it fails to start, it is ended and the constructor raises."""

    def __init__(self, library: str, servertype: str, serializer: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "server", library, servertype],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=child_env(library, serializer))
        try:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("%s %s server did not start (exit code %s)"
                                   % (library, servertype, self.proc.wait(10)))
            info = json.loads(line)
        except BaseException:
            self.stop()
            raise
        self.uri, self.pid = info["uri"], info["pid"]

    def stop(self) -> None:
        """Close stdin (the server's signal to exit), wait, kill only if it hangs."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def measure(server: Server, library: str, mode: str, count: int, procs: int, duration: float,
            serializer: str, setup: Optional[float] = None) -> Tuple[float, float]:
    """(calls/s, server CPU microseconds per call) of ``count`` clients in ``procs`` processes.

    The clients start calling ``setup`` seconds after launch (default 1.5 s + 50 ms per client),
    all at once, so process start-up and connecting are outside the window. A client process
    that fails or hangs raises RuntimeError or TimeoutExpired; none is left running either way.
    """
    go_at = time.time() + (1.5 + 0.05 * count if setup is None else setup)
    shares = [count // procs + (1 if n < count % procs else 0) for n in range(procs)]
    children: List[subprocess.Popen[str]] = []
    results: List[Dict[str, Any]] = []
    try:
        for share in filter(None, shares):
            children.append(subprocess.Popen([sys.executable, __file__, "client", library, mode, server.uri,
                                              str(share), str(duration), repr(go_at)], stdout=subprocess.PIPE,
                                             text=True, env=child_env(library, serializer)))
        wait_until(go_at)
        cpu_before = cpu_of(server.pid)
        for child in children:
            out, _ = child.communicate(timeout=duration + 60)
            if child.returncode:
                raise RuntimeError("%s %s client process exited with code %d" % (library, mode, child.returncode))
            results.append(json.loads(out))
        cpu = cpu_of(server.pid) - cpu_before
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
    late = max(result["late"] for result in results)
    if late > 0:
        print("note: %d %s %s clients: the last proxy was bound %.2f s into the %.2f s window"
              % (count, library, mode, late, duration), file=sys.stderr, flush=True)
    calls = sum(result["calls"] for result in results)
    return calls / duration, 1e6 * cpu / max(calls, 1)


def table(rows: List[List[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def part_a(args: argparse.Namespace) -> str:
    rows = [["server", "tasks", "aio.Proxy calls/s", "Pyro4 threads calls/s", "ratio"]]
    for library, servertype in [("pyro4compat", "thread"), ("pyro4compat", "multiplex"), ("pyro4compat", "asyncio"),
                                ("Pyro4", "thread"), ("Pyro4", "multiplex")]:
        server = Server(library, servertype, args.serializer)
        try:
            for tasks in (1, 10, 100):
                ours, _ = measure(server, "pyro4compat", "aio-one-proxy", tasks, 1, args.duration, args.serializer)
                theirs, _ = measure(server, "Pyro4", "threads", tasks, 1, args.duration, args.serializer)
                rows.append(["%s %s" % (library, servertype), str(tasks), "%.0f" % ours, "%.0f" % theirs,
                             "%.2f" % (ours / theirs if theirs else 0)])
                print(rows[-1], file=sys.stderr, flush=True)
        finally:
            server.stop()
    return table(rows)


PLAN_B = {"asyncio": ("pyro4compat", "asyncio", "aio-proxies"), "thread": ("pyro4compat", "thread", "aio-proxies"),
          "multiplex": ("pyro4compat", "multiplex", "aio-proxies"),
          "thread-threads": ("pyro4compat", "thread", "threads"),
          "multiplex-threads": ("pyro4compat", "multiplex", "threads"),
          "Pyro4-thread": ("Pyro4", "thread", "threads"), "Pyro4-multiplex": ("Pyro4", "multiplex", "threads")}


def part_b(args: argparse.Namespace) -> str:
    rows = [["round", "server", "clients", "calls/s", "server CPU us/call"]]
    names = args.servers.split(",") if args.servers else list(PLAN_B)
    ratios: List[Tuple[float, float]] = []
    for round_ in range(1, args.repeat + 1):
        found: Dict[str, Tuple[float, float]] = {}
        for name in names:
            library, servertype, mode = PLAN_B[name]
            server = Server(library, servertype, args.serializer)
            try:
                client_library = "Pyro4" if library == "Pyro4" else "pyro4compat"
                rate, cpu = measure(server, client_library, mode, args.clients, args.procs, args.duration,
                                    args.serializer)
            finally:
                server.stop()
            found[name] = (rate, cpu)
            who = "aio.Proxy tasks" if mode.startswith("aio") else "%s threads" % client_library
            rows.append([str(round_), "%s %s" % (library, servertype), "%d %s" % (args.clients, who),
                         "%.0f" % rate, "%.1f" % cpu])
            print(rows[-1], file=sys.stderr, flush=True)
        if "asyncio" in found and "multiplex" in found:
            (arate, acpu), (mrate, mcpu) = found["asyncio"], found["multiplex"]
            ratios.append((arate / mrate, acpu / mcpu))
    text = table(rows)
    if ratios:
        lines = ["", "asyncio / multiplex, same round:  calls/s ratio   CPU/call ratio"]
        lines += ["  round %d                          %.2f            %.2f" % (n + 1, r, c)
                  for n, (r, c) in enumerate(ratios)]
        lines.append("  median                           %.2f            %.2f" % (
            statistics.median(r for r, _ in ratios), statistics.median(c for _, c in ratios)))
        text += "\n".join([""] + lines)
    return text


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "server":
        serve(argv[1], argv[2])
        return 0
    if argv and argv[0] == "client":
        client(argv[1], argv[2], argv[3], int(argv[4]), float(argv[5]), float(argv[6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--serializer", default="marshal")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--only", choices=["a", "b"])
    parser.add_argument("--servers", help="comma-separated rows of (b): " + ", ".join(PLAN_B))
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (b)")
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",") if args.servers else ()) - set(PLAN_B)
    if unknown:
        parser.error("unknown --servers: %s" % ", ".join(sorted(unknown)))
    if args.only != "b":
        print("(a) one aio.Proxy with N concurrent tasks vs Pyro4 4.82 with N client threads (%s)\n" % args.serializer)
        print(part_a(args) + "\n")
    if args.only != "a":
        print("(b) %d concurrent clients in %d processes (%s)\n" % (args.clients, args.procs, args.serializer))
        print(part_b(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
