"""Where a small call's time goes: cProfile of both sides, per call, in µs.

    python benchmarks/profile_calls.py [--library pyro4compat|Pyro4] [--serializer S[,S]]
                                       [--servertype T[,T]] [--duration SEC] [--top N]
                                       [--figure small_calls] [--keep DIR]

Starts a profiled server (one cProfile per server thread, merged) and a client that runs
one workload under cProfile, then prints each side's top functions by own time, divided by
the number of calls the workload made. cProfile inflates every function call, so read the
numbers as shares of the cost, and take absolute per-call CPU from ``run.py --cpu``.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from run import BUSYPOLL_MODES, OURS_ENV, Worker, job_for


# Builtins where a side waits for the other (wall time, not work): left out of the totals.
BLOCKING = ("'recv' of", "'recv_into' of", "'acquire' of", "'poll' of", "'select' of", "'accept' of",
            "time.sleep", "'wait' of")


def top_functions(path: Path, calls: int, top: int) -> str:
    """The ``top`` functions by own time, as µs per workload call, plus the total."""
    stats = pstats.Stats(str(path), stream=io.StringIO())
    entries = []
    total = waiting = 0.0
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(marker in name for marker in BLOCKING):
            waiting += tottime
            continue
        total += tottime
        entries.append((tottime, ncalls, cumtime, "%s:%d(%s)" % (_short(filename), line, name)))
    entries.sort(reverse=True)
    lines = ["  total %.1f us/call of work under the profiler (%.1f us/call waiting, left out)"
             % (total * 1e6 / calls, waiting * 1e6 / calls),
             "  %9s %9s %9s  %s" % ("own us", "calls/op", "cum us", "function")]
    for tottime, ncalls, cumtime, where in entries[:top]:
        lines.append("  %9.2f %9.2f %9.2f  %s" % (tottime * 1e6 / calls, ncalls / calls, cumtime * 1e6 / calls, where))
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("/pyro4compat/", "/Pyro4/", "/serpent", "/lib/python3"):
        index = filename.find(marker)
        if index >= 0:
            return filename[index + 1:]
    return filename


def profile_one(library: str, serializer: str, servertype: str, figure: str, duration: float,
                top: int, folder: Path) -> str:
    stem = "%s-%s-%s-%s" % (library, figure, serializer, servertype)
    server_file, client_file = folder / (stem + ".server.prof"), folder / (stem + ".client.prof")
    server = Worker(library, "server", {"servertype": servertype, "ns": False, "profile": str(server_file)})
    try:
        client = Worker(library, "client")
        try:
            job = job_for(server, figure, serializer, duration)
            job["profile"] = str(client_file)
            result = client.request(job)
        finally:
            client.stop()
    finally:
        server.stop(30.0)
    if "error" in result:
        return "%s: error\n%s" % (stem, result["error"])
    calls = result["ops"]
    return "\n".join([
        "== %s: %d calls, %.0f calls/s under the profiler" % (stem, calls, calls / result["seconds"]),
        "-- client", top_functions(client_file, calls, top),
        "-- server", top_functions(server_file, calls, top) if server_file.exists() else "  (no server profile)",
    ])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", default="pyro4compat", choices=("pyro4compat", "Pyro4"))
    parser.add_argument("--serializer", default="serpent,marshal")
    parser.add_argument("--servertype", default="thread,multiplex")
    parser.add_argument("--figure", default="small_calls")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", help="keep the .prof files in this folder")
    parser.add_argument("--busypoll", choices=("on", "off"), default="on",
                        help="pyro4compat's busy-polling (off: PYRO_BUSYPOLL_US=0 in both processes)")
    args = parser.parse_args(argv)
    OURS_ENV.update(dict(BUSYPOLL_MODES)[args.busypoll])
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pyro4compat-profile-"))
    folder.mkdir(parents=True, exist_ok=True)
    for servertype in args.servertype.split(","):
        for serializer in args.serializer.split(","):
            print(profile_one(args.library, serializer, servertype, args.figure, args.duration, args.top, folder))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
