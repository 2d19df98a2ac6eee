"""Bytecode executed per small call, client and server side: a deterministic measure of Python work.

Timings on a shared VM move 15-20% from run to run; the number of bytecode instructions a call
executes does not. This runs one library (``pyro4compat`` or real ``Pyro4``) in this process
(a daemon on a thread, a proxy on the main thread), traces every opcode once warmed up, and
prints the opcodes per call of each side and the functions that execute most of them::

    python benchmarks/count_opcodes.py --library pyro4compat --servertype thread --serializer marshal
    python benchmarks/count_opcodes.py --library Pyro4 --servertype thread --serializer marshal
    python benchmarks/count_opcodes.py --servertype asyncio    # pyro4compat's aio.Daemon (its own
                                                               # event loop thread, a blocking proxy)
    python benchmarks/count_opcodes.py --servertype asyncio --clients 20   # 20 callers at once

With ``--clients N`` (N > 1), N threads call at once, a proxy each, so a server's per-turn
and per-batch costs spread over the calls of a batch as under load; the client side is then
all N threads together, and the counts vary a little with how calls happen to batch.

Busy-polling is off (``PYRO_BUSYPOLL_US=0``), as across a network. The count leaves out C
work (system calls, the serializer libraries), so read it next to ``run.py``'s CPU columns,
not instead of them. Client and server share one interpreter here, so pyro4compat's thread
server parks the connection more often than with a client in another process (its worker
pool's opcodes show up); ``profile_calls.py`` measures across processes.
"""
from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
import threading
from typing import Any, Counter, Tuple

Key = Tuple[str, int, str]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's pyro4compat, whatever is installed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=("pyro4compat", "Pyro4"), default="pyro4compat")
    parser.add_argument("--servertype", choices=("thread", "multiplex", "asyncio"), default="thread")
    parser.add_argument("--serializer", default="marshal")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--clients", type=int, default=1, help="threads calling at once, a proxy each")
    args = parser.parse_args()
    if args.servertype == "asyncio" and args.library != "pyro4compat":
        parser.error("--servertype asyncio is pyro4compat's aio.Daemon")
    os.environ["PYRO_BUSYPOLL_US"] = "0"
    pyro = importlib.import_module(args.library)
    if args.servertype != "asyncio":
        pyro.config.SERVERTYPE = args.servertype
    pyro.config.SERIALIZER = args.serializer
    pyro.config.SERIALIZERS_ACCEPTED = {args.serializer}

    counts = {"client": collections.Counter(), "server": collections.Counter()}  # type: dict
    tracing = threading.Event()
    client_threads = {threading.get_ident()}

    def per_opcode(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode" and tracing.is_set():
            code = frame.f_code
            side = "client" if threading.get_ident() in client_threads else "server"
            counts[side][(code.co_filename, code.co_firstlineno, code.co_name)] += 1
        return per_opcode

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return per_opcode

    @pyro.expose
    class Bench(object):
        def add(self, a: int, b: int) -> int:
            return a + b

    threading.settrace(on_call)      # before the daemon: its pool threads start traced
    daemon_class = importlib.import_module("pyro4compat.aio").Daemon if args.servertype == "asyncio" else pyro.Daemon
    daemon = daemon_class(host="127.0.0.1")
    uri = daemon.register(Bench())
    loop = threading.Thread(target=daemon.requestLoop, daemon=True)
    loop.start()
    if args.clients > 1:
        calls = run_clients(pyro, uri, args, client_threads, tracing)
    else:
        proxy = pyro.Proxy(uri)
        add = proxy.add
        for _ in range(200):
            add(1, 2)
        sys.settrace(on_call)
        tracing.set()
        for _ in range(args.calls):
            add(1, 2)
        tracing.clear()
        sys.settrace(None)
        proxy._pyroRelease()
        calls = args.calls
    threading.settrace(None)  # type: ignore[arg-type]
    daemon.shutdown()
    loop.join(5)
    report(args, counts, calls)


def run_clients(pyro: Any, uri: Any, args: argparse.Namespace, client_threads: "set[int]",
                tracing: threading.Event) -> int:
    """``--clients N``: N threads, a proxy each, warmed up, then all call ``--calls`` times at once."""
    ready = threading.Barrier(args.clients + 1)
    go = threading.Event()

    def client() -> None:
        client_threads.add(threading.get_ident())
        proxy = pyro.Proxy(uri)
        for _ in range(50):
            proxy.add(1, 2)
        ready.wait()
        go.wait()
        for _ in range(args.calls):
            proxy.add(1, 2)
        proxy._pyroRelease()

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    tracing.set()
    go.set()
    for thread in threads:
        thread.join()
    tracing.clear()
    return args.calls * args.clients


def report(args: argparse.Namespace, counts: "dict[str, Counter[Key]]", calls: int) -> None:
    print("%s, %s server, %s, %d client thread(s): opcodes per call"
          % (args.library, args.servertype, args.serializer, args.clients))
    for side in ("client", "server"):
        total = sum(counts[side].values())
        print("-- %s: %.1f" % (side, total / calls))
        for (filename, line, name), count in counts[side].most_common(args.top):
            short = filename.split("site-packages/")[-1].split(os.sep + "lib" + os.sep)[-1].replace(REPO + os.sep, "")
            print("  %7.1f  %s:%d(%s)" % (count / calls, short, line, name))


if __name__ == "__main__":
    main()
